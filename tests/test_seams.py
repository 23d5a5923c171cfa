"""One contract test per seam: write through the owner, read through every consumer.

Each OMOP row convention has one owner module that writes and reads it
(ARCHITECTURE.md section 1, "One owner per seam"). Here one patient is consented
(``cohort.consent``), their RT dataset imported through the real DICOM import path
(``etl.ingest.run`` -> ``etl.store.load``), their QLQ-C30 submitted through invitation links
(``cohort.prom_link``) and their CTCAE gradings stored (``instruments.store``); then
the schedule, the completion report, the NTCP dataset and the dose-metric export must
all see the same rows. Both backends.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from cohort import invitations
from cohort.centres import add_centre
from cohort.consent import record_consent
from cohort.prom_link import submit_prom_by_link
from cohort.schedule import Kind, Status, schedule
from etl.deid.pseudonymise import date_offset_days, pseudonym
from etl.dose.metrics import evaluate, parse_metric
from etl.dose.radiobiology import dvh_to_eqd2
from etl.ingest.run import run_import
from etl.store.dvh_rows import dvh_from_row
from etl.store.export import dose_metric_table
from instruments.fhir import PSEUDONYM_SYSTEM, SubjectIdentifier
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.store import Assessment, store_toxicity
from ntcp.dataset import DatasetSpec, ExclusionReason, extract_dataset
from omop.cdm import Episode
from omop.ingest_tables import Dvh
from omop.vocab.standard import RT_COURSE_EPISODE
from rtcohort.wiring import CohortExportAccess
from tests.etl.ingest_corpus import edit, write_patient
from tests.etl.ingest_db import KEY, Db, make_db

UTC = datetime.UTC
PATIENT = "SEAM-1"
STUDY_DATE = datetime.date(2024, 1, 1)  # the phantom's StudyDate
BIRTH_DATE = datetime.date(1955, 1, 1)  # written into the phantom's headers
AGE_AT_START = 69  # on 2024-01-01 (the year of birth alone would give 2023 - 1955)
FRACTIONS = 30  # the phantom plan's fractions
ORGAN = "Lung_L"  # "Lunga vä" under the default mapping rules
SIGNING_KEY = bytes(range(32, 64))
ALPHA_BETA_GY = 3.0


@dataclass(frozen=True)
class Loaded:
    db: Db
    person_id: int
    care_site_id: int
    offset: int
    course_start: datetime.date  # shifted


def _real(day: datetime.date, loaded: Loaded) -> datetime.date:
    """The real date of a shifted one."""
    return day - datetime.timedelta(days=loaded.offset)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    for db in make_db(request, tmp_path_factory.mktemp("seams")):
        folder = tmp_path_factory.mktemp("seams-dicom")
        write_patient(folder, PATIENT, 301)
        for path in folder.glob("*.dcm"):
            edit(path, PatientBirthDate=BIRTH_DATE.strftime("%Y%m%d"))
        with db.factory.begin() as session:
            site = add_centre(session, "TST01")
            event = record_consent(
                session,
                centre=site,
                pseudonym=pseudonym(KEY, PATIENT),
                state="consented",
                event_date=datetime.date(2000, 1, 1),
                actor="test",
                year_of_birth=1955,
                sex="M",
                site="lung",
            )
            person_id, care_site_id = event.person_id, site.care_site_id
        summary = run_import(db.factory, [folder], db.options())
        assert summary.loaded == 1, summary
        offset = date_offset_days(KEY, PATIENT)
        yield Loaded(
            db,
            person_id,
            care_site_id,
            offset,
            STUDY_DATE + datetime.timedelta(days=offset),
        )


def _last_fraction(start: datetime.date, n: int) -> datetime.date:
    """Walk the calendar: fraction k on the k-th weekday (Monday-Friday) from start."""
    day, given = start, 0
    while True:
        given += day.weekday() < 5
        if given == n:
            return day
        day += datetime.timedelta(days=1)


def _offsets(loaded: Loaded) -> dict[int, int]:
    return {loaded.person_id: loaded.offset}


def _items(loaded: Loaded, today: datetime.date) -> dict[tuple[str, Kind], Status]:
    with loaded.db.factory() as session:
        return {
            (i.timepoint, i.kind): i.status
            for i in schedule(
                session, loaded.care_site_id, today, offsets=_offsets(loaded)
            )
            if i.person_id == loaded.person_id
        }


def test_rt_course_seam_schedule_ntcp_and_export_agree(loaded: Loaded) -> None:
    """etl.store.load writes the course; schedule, NTCP and export read the same course."""
    with loaded.db.factory() as session:
        starts = session.scalars(
            select(Episode.episode_start_date).where(
                Episode.person_id == loaded.person_id,
                Episode.episode_concept_id == RT_COURSE_EPISODE,
            )
        ).all()
        assert starts == [loaded.course_start]  # the shifted StudyDate, not today
        row = session.scalars(
            select(Dvh).where(
                Dvh.person_id == loaded.person_id, Dvh.tg263_name == ORGAN
            )
        ).one()
        eqd2_mean = evaluate(
            dvh_to_eqd2(dvh_from_row(row), FRACTIONS, ALPHA_BETA_GY),
            parse_metric("Mean[Gy]"),
        )
        dataset = extract_dataset(
            session,
            "admin",
            DatasetSpec(
                ORGAN, "ctcae:Pneumonitis>=2@365d", alpha_beta_gy=ALPHA_BETA_GY
            ),
        )
        export = dose_metric_table(
            session,
            access=CohortExportAccess(session, "admin"),
            structures=[ORGAN],
            metrics=["Mean[Gy]"],
            alpha_beta_gy=ALPHA_BETA_GY,
        )
    # schedule: baseline on the RT start; eot, m3, m6 ... on the planned last fraction
    the_day_after = _real(loaded.course_start, loaded) + datetime.timedelta(days=1)
    with loaded.db.factory() as session:
        items = [
            i
            for i in schedule(
                session, loaded.care_site_id, the_day_after, offsets=_offsets(loaded)
            )
            if i.person_id == loaded.person_id and i.kind is Kind.TOXICITY
        ]
    # in the shifted frame the baseline target is the course start
    end = _last_fraction(loaded.course_start, FRACTIONS)
    after = {"eot": 0, "m3": 91, "m6": 182, "m12": 365, "m24": 730, "m36": 1095}
    after["m60"] = 1826
    assert {i.timepoint: i.target_date for i in items} == {
        "baseline": loaded.course_start,
        **{t: end + datetime.timedelta(days=d) for t, d in after.items()},
    }
    # NTCP: the prescription's fractions (a patient without them would be excluded)
    assert dataset.n_selected == 1
    reasons = {e.reason for e in dataset.exclusions}
    assert not reasons & {
        ExclusionReason.MISSING_FRACTIONS,
        ExclusionReason.NO_RT_COURSE,
    }
    # export: EQD2 with the course's fractions
    assert len(export.rows) == 1
    assert export.rows[0][-1] == repr(eqd2_mean)


def test_prom_by_link_seam_completion_schedule_and_ntcp(loaded: Loaded) -> None:
    """A QLQ-C30 submitted by link counts as completed everywhere (was: not)."""
    start_real = _real(loaded.course_start, loaded)
    before = datetime.datetime.combine(
        start_real - datetime.timedelta(days=3), datetime.time(9), UTC
    )
    later = datetime.datetime.combine(
        start_real + datetime.timedelta(days=120), datetime.time(9), UTC
    )
    answers = dict.fromkeys(range(1, 29), 1)
    for timepoint, now, global_health in (("baseline", before, 7), ("m3", later, 4)):
        with loaded.db.factory.begin() as session:
            token = invitations.issue(
                session, SIGNING_KEY, loaded.person_id, timepoint, now=now
            ).token
            submit_prom_by_link(
                session,
                SIGNING_KEY,
                token,
                answers | {29: global_health, 30: global_health},
                date_offset_days=loaded.offset,
                now=now,
            )
    with loaded.db.factory() as session:
        report = {
            r.timepoint: (r.expected, r.completed)
            for r in invitations.completion(session, [loaded.care_site_id])
        }
        dataset = extract_dataset(
            session, "admin", DatasetSpec(ORGAN, "qlqc30:QL2-10@m3")
        )
    assert report == {"baseline": (1, 1), "m3": (1, 1)}
    items = _items(loaded, start_real + datetime.timedelta(days=1))
    assert items[("baseline", Kind.PROM)] is Status.DONE
    # global health 7,7 -> QL2 100; 4,4 -> QL2 (4 - 1) / 6 * 100 = 50: a fall of 50
    assert dataset.table.patient_ids == [pseudonym(KEY, PATIENT)]
    assert list(dataset.table.outcome) == [1]  # type: ignore[arg-type]
    assert list(dataset.table.covariates["baseline_score"]) == [100.0]
    # the age at the course start stored by the import (from the real dates)
    assert list(dataset.table.covariates["age_years"]) == [float(AGE_AT_START)]
    assert list(dataset.table.dvhs.n_fractions) == [FRACTIONS]


def test_toxicity_seam_schedule_and_ntcp_outcome(loaded: Loaded) -> None:
    """Gradings stored by instruments.store mark the schedule and make the outcome."""
    start_real = _real(loaded.course_start, loaded)
    subject = SubjectIdentifier(PSEUDONYM_SYSTEM, pseudonym(KEY, PATIENT))
    gradings = (
        ("baseline", start_real - datetime.timedelta(days=5), 0),  # assessed, absent
        ("m3", start_real + datetime.timedelta(days=60), 2),
    )
    with loaded.db.factory.begin() as session:
        for n, (timepoint, day, grade) in enumerate(gradings):
            store_toxicity(
                session,
                Assessment(loaded.person_id, timepoint, loaded.offset),
                ToxicityGrading(
                    resource_id=f"seam-ae-{n}",
                    subject=subject,
                    version="5.0",
                    term="Pneumonitis",
                    grade=grade,
                    assessed_on=day,
                ),
            )
    items = _items(loaded, start_real + datetime.timedelta(days=1))
    assert items[("baseline", Kind.TOXICITY)] is Status.DONE
    with loaded.db.factory() as session:
        dataset = extract_dataset(
            session, "admin", DatasetSpec(ORGAN, "ctcae:Pneumonitis>=2@365d")
        )
    assert dataset.table.patient_ids == [pseudonym(KEY, PATIENT)]
    assert list(dataset.table.outcome) == [1]  # type: ignore[arg-type]
    tte = dataset.time_to_event
    assert tte is not None
    assert list(tte["duration_days"]) == [60.0]
    assert list(tte["status"]) == [1]
