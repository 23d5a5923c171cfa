"""RT course end (planned last fraction) and age at the course start, through the import.

Truth is computed here independently: the last fraction by walking the calendar day by
day (Monday-Friday), the age from the real birth and study dates written into the
phantom's headers. Both backends.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from cohort.centres import add_centre, get_centre
from cohort.consent import record_consent
from cohort.schedule import Kind, schedule
from etl.deid.age import age_element, age_in_years, age_years_of, dicom_age
from etl.deid.pseudonymise import date_offset_days, pseudonym
from etl.ingest.run import run_import
from etl.phantom.write import write_phantom
from etl.store.course_age import course_ages
from etl.store.course_dates import planned_end_date
from omop.cdm import Episode, Observation, Person, ProcedureOccurrence
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id
from tests.etl.ingest_corpus import SMALL_SPEC, edit
from tests.etl.ingest_db import KEY, Db, make_db

FRACTIONS = 30  # SMALL_SPEC's plan
BIRTH = datetime.date(1958, 7, 14)
STUDY = datetime.date(2024, 3, 6)  # a Wednesday


def _last_fraction(start: datetime.date, n: int) -> datetime.date:
    """Walk the calendar: fraction k on the k-th weekday from ``start``."""
    day, given = start, 0
    while True:
        if day.weekday() < 5:
            given += 1
            if given == n:
                return day
        day += datetime.timedelta(days=1)


# -- pure -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 6, 25, 30, 33, 39])
@pytest.mark.parametrize("weekday", range(7))
def test_planned_end_matches_a_calendar_walk(n: int, weekday: int) -> None:
    start = datetime.date(2024, 12, 23) + datetime.timedelta(days=weekday)
    assert planned_end_date(start, n) == _last_fraction(start, n)


def test_planned_end_with_fewer_fractions_a_week() -> None:
    monday = datetime.date(2024, 1, 1)
    # 3 a week on Monday, Wednesday, Friday: the 6th is the second Friday
    assert planned_end_date(monday, 6, fractions_per_week=3) == datetime.date(
        2024, 1, 12
    )
    # once a week: the 5th is four weeks after the first
    assert planned_end_date(monday, 5, fractions_per_week=1) == monday + (
        datetime.timedelta(weeks=4)
    )
    with pytest.raises(ValueError, match="n_fractions"):
        planned_end_date(monday, 0)
    with pytest.raises(ValueError, match="fractions_per_week"):
        planned_end_date(monday, 5, fractions_per_week=6)


def test_age_in_whole_years() -> None:
    assert age_in_years(BIRTH, STUDY) == 65
    assert age_in_years(BIRTH, datetime.date(2024, 7, 13)) == 65
    assert age_in_years(BIRTH, datetime.date(2024, 7, 14)) == 66
    leap = datetime.date(1960, 2, 29)
    assert age_in_years(leap, datetime.date(2024, 2, 28)) == 63
    assert age_in_years(leap, datetime.date(2024, 2, 29)) == 64
    assert [age_years_of(t) for t in ("065Y", "006M", "030M", "010W", "x", "")] == [
        65,
        0,
        2,
        0,
        None,
        None,
    ]
    assert dicom_age(7) == "007Y"
    with pytest.raises(ValueError, match="outside"):
        dicom_age(1000)


def test_age_element_needs_both_dates() -> None:
    def values(**tags: str) -> dict[int, tuple[str, bytes]]:
        codes = {"birth": 0x00100030, "study": 0x00080020}
        return {codes[k]: ("DA", v.encode()) for k, v in tags.items()}

    assert age_element(values(birth="19580714"), True) == {}
    assert age_element(values(study="20240306"), True) == {}
    assert age_element(values(birth="20250101", study="20240306"), True) == {}
    assert age_element(values(birth="1958", study="20240306"), True) == {}
    element = age_element(values(birth="19580714", study="20240306"), True)
    assert next(iter(element.values())).endswith(b"065Y")


# -- through the import ---------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("course"))


def _write(folder: Path, patient_id: str, seed: int, birth: str) -> None:
    write_phantom(
        folder, SMALL_SPEC, patient_id=patient_id, seed=seed, study_date=STUDY
    )
    for path in folder.glob("*.dcm"):
        edit(path, PatientBirthDate=birth)


def _consent(db: Db, patient_id: str) -> tuple[int, int]:
    with db.factory.begin() as session:
        try:
            site = get_centre(session, "TST01")
        except LookupError:
            site = add_centre(session, "TST01")
        event = record_consent(
            session,
            centre=site,
            pseudonym=pseudonym(KEY, patient_id),
            state="consented",
            event_date=datetime.date(2023, 1, 1),
            actor="test",
            year_of_birth=BIRTH.year,
            sex="F",
            site="lung",
        )
        return event.person_id, site.care_site_id


def _course(db: Db, person_id: int) -> Episode:
    with db.factory() as session:
        return session.scalars(
            select(Episode).where(
                Episode.person_id == person_id, Episode.episode_concept_id == 32940
            )
        ).one()


def test_imported_course_has_planned_end_age_and_follow_up(
    db: Db, tmp_path: Path
) -> None:
    pid = "CD-1"
    person_id, site_id = _consent(db, pid)
    _write(tmp_path / "p", pid, 401, BIRTH.strftime("%Y%m%d"))
    assert run_import(db.factory, [tmp_path / "p"], db.options()).loaded == 1
    offset = date_offset_days(KEY, pid)
    start = STUDY + datetime.timedelta(days=offset)  # shifted frame
    end = _last_fraction(start, FRACTIONS)
    episode = _course(db, person_id)
    assert (episode.episode_start_date, episode.episode_end_date) == (start, end)
    with db.factory() as session:
        procedure = session.scalars(
            select(ProcedureOccurrence).where(
                ProcedureOccurrence.person_id == person_id
            )
        ).one()
        assert procedure.procedure_end_date == end
        age = session.scalars(
            select(Observation).where(Observation.person_id == person_id)
        ).one()
        assert age.observation_event_id == episode.episode_id
        assert age.obs_event_field_concept_id == field_concept_id(
            session, "episode.episode_id"
        )
        assert age.observation_source_concept_id == our_concept_id(
            "RTC Course", "age_at_start"
        )
        assert (age.value_as_number, age.unit_source_value) == (65.0, "a")
        assert age.observation_date == start
        assert course_ages(session, [episode.episode_id]) == {episode.episode_id: 65}
        # the birth date never reaches the store
        assert (
            session.scalar(
                select(Person.year_of_birth).where(Person.person_id == person_id)
            )
            == BIRTH.year
        )
    stored = [
        pydicom.dcmread(p, stop_before_pixels=True)
        for p in (db.root / "files").rglob("*")
        if p.is_file()
    ]
    mine = [d for d in stored if d.PatientID == pseudonym(KEY, pid)]
    assert mine and {d.PatientBirthDate for d in mine} == {""}
    assert {d.PatientAge for d in mine} == {"065Y"}
    # the schedule: eot, m3, m6 ... anchored on the planned end (shifted frame)
    real_day_after_end = end - datetime.timedelta(days=offset - 1)
    with db.factory() as session:
        items = [
            i
            for i in schedule(
                session, site_id, real_day_after_end, offsets={person_id: offset}
            )
            if i.person_id == person_id and i.kind is Kind.TOXICITY
        ]
    targets = {i.timepoint: i.target_date for i in items}
    days = datetime.timedelta
    assert targets == {
        "baseline": start,
        "eot": end,
        "m3": end + days(91),
        "m6": end + days(182),
        "m12": end + days(365),
        "m24": end + days(730),
        "m36": end + days(1095),
        "m60": end + days(1826),
    }


def test_second_dose_of_the_course_extends_and_a_new_plan_version_replaces(
    db: Db, tmp_path: Path
) -> None:
    pid = "CD-2"
    person_id, _ = _consent(db, pid)
    _write(tmp_path / "p", pid, 402, "")  # no birth date: no age row
    run_import(db.factory, [tmp_path / "p"], db.options())
    start = STUDY + datetime.timedelta(days=date_offset_days(KEY, pid))
    first = _course(db, person_id)
    assert first.episode_end_date == _last_fraction(start, FRACTIONS)
    with db.factory() as session:
        assert course_ages(session, [first.episode_id]) == {}
    # a second dose of the same plan, planned 3 weeks later (a sequential boost
    # delivered under the same plan): the course end moves to its end
    later = STUDY + datetime.timedelta(days=21)
    boost = pydicom.dcmread(tmp_path / "p" / "RTDOSE.dcm")
    boost.SOPInstanceUID = boost.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    boost.SeriesInstanceUID = generate_uid()
    boost.StudyDate = later.strftime("%Y%m%d")
    (tmp_path / "boost").mkdir()
    boost.save_as(tmp_path / "boost" / "RTDOSE.dcm", enforce_file_format=True)
    for name in ("RTPLAN.dcm", "RTSTRUCT.dcm"):
        shutil.copy(tmp_path / "p" / name, tmp_path / "boost" / name)
    for ct in (tmp_path / "p").glob("CT_*.dcm"):
        shutil.copy(ct, tmp_path / "boost" / ct.name)
    assert run_import(db.factory, [tmp_path / "boost"], db.options()).loaded == 1
    shifted_later = later + (start - STUDY)
    extended = _course(db, person_id)
    assert extended.episode_id == first.episode_id
    assert extended.episode_start_date == start
    assert extended.episode_end_date == _last_fraction(shifted_later, FRACTIONS)
    # re-sending the first dose does not shorten the shared course
    again = pydicom.dcmread(tmp_path / "p" / "RTDOSE.dcm")
    again.SeriesDescription = "re-sent"
    again.save_as(tmp_path / "resent.dcm", enforce_file_format=True)
    run_import(db.factory, [tmp_path / "resent.dcm"], db.options())
    assert _course(db, person_id).episode_end_date == extended.episode_end_date


def test_new_plan_version_of_a_single_dose_course_recomputes_the_end(
    db: Db, tmp_path: Path
) -> None:
    pid = "CD-3"
    person_id, _ = _consent(db, pid)
    _write(tmp_path / "p", pid, 403, BIRTH.strftime("%Y%m%d"))
    run_import(db.factory, [tmp_path / "p"], db.options())
    plan = pydicom.dcmread(tmp_path / "p" / "RTPLAN.dcm")
    plan.FractionGroupSequence[0].NumberOfFractionsPlanned = 20
    plan.save_as(tmp_path / "plan20.dcm", enforce_file_format=True)
    assert run_import(db.factory, [tmp_path / "plan20.dcm"], db.options()).loaded == 1
    start = STUDY + datetime.timedelta(days=date_offset_days(KEY, pid))
    episode = _course(db, person_id)
    assert episode.episode_end_date == _last_fraction(start, 20)
    with db.factory() as session:  # the age row is replaced, not doubled
        ages = session.scalars(
            select(Observation.value_as_number).where(
                Observation.observation_event_id == episode.episode_id
            )
        ).all()
    assert ages == [65.0]
