"""NTCP datasets from OMOP (both backends): selection, exclusions, outcomes, doses,
permissions, audit, and ``ntcp fit --from-db`` end to end on a simulated cohort.

Rows are written through the cohort and instruments APIs (consent, vital status,
projects, CTCAE gradings, QLQ-C30 questionnaires); the RT course, prescription and
``dvh`` rows are written by hand the way ``etl.store.load`` writes them (checked against
``etl.store.course.episode_fractions`` and ``etl.store.dvh_rows.dvh_from_row``).
"""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cohort import consent
from cohort.centres import add_centre
from cohort.errors import PermissionDeniedError
from cohort.projects import add_member, attach, create_project
from cohort.users import add_user
from cohort.vital import record_death, record_last_contact
from etl.dose.dvh import DVH
from etl.store.course import episode_fractions
from etl.store.dvh_rows import dvh_from_row, pack_dvh
from instruments.fhir import PSEUDONYM_SYSTEM, PromResponse, SubjectIdentifier
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.store import Assessment, store_prom, store_toxicity
from ntcp.cohort_csv import read_cohort_csv
from ntcp.dataset import DatasetError, DatasetSpec, ExclusionReason, extract_dataset
from ntcp.simulate import simulate_lkb_cohort
from ntcp.workflow import fit_cohort
from omop import cdm
from omop.cohort_tables import AuditPerson, AuditRecord
from omop.ingest_tables import Dvh, IngestDataset
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id
from tests.project_labels import labels

D = datetime.date
ENROLLED = D(2025, 1, 10)
START = D(2025, 2, 1)
TODAY = D(2025, 3, 1)
R = ExclusionReason
_uid = iter(range(1, 10**9))


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    import cohort.users

    monkeypatch.setattr(
        cohort.users,
        "_HASHER",
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )


# -- builders ---------------------------------------------------------------------


def enrol(
    session: Session,
    centre: cdm.CareSite,
    pseudonym: str,
    *,
    sex: str = "F",
    year: int = 1960,
    site: str = "lung",
    scopes: list[str] | None = None,
) -> int:
    event = consent.record_consent(
        session,
        centre=centre,
        pseudonym=pseudonym,
        state="consented",
        event_date=ENROLLED,
        actor="test",
        scopes=scopes,
        year_of_birth=year,
        sex=sex,
        site=site,
    )
    return event.person_id


def course(
    session: Session, person_id: int, start: datetime.date, n_fractions: int | None
) -> tuple[int, int]:
    """RT course EPISODE 32940, its PROCEDURE and prescription as etl.store.load writes."""
    episode = cdm.Episode(
        person_id=person_id,
        episode_concept_id=32940,
        episode_start_date=start,
        episode_object_concept_id=0,
        episode_type_concept_id=32817,
        episode_source_concept_id=our_concept_id("RTC Course", "rt_course"),
    )
    procedure = cdm.ProcedureOccurrence(
        person_id=person_id,
        procedure_concept_id=0,
        procedure_date=start,
        procedure_type_concept_id=32817,
        quantity=n_fractions,
    )
    session.add_all([episode, procedure])
    session.flush()
    if n_fractions is not None:
        session.add(
            cdm.Measurement(
                person_id=person_id,
                measurement_concept_id=0,
                measurement_date=start,
                measurement_type_concept_id=32817,
                value_as_number=float(n_fractions),
                measurement_source_value="prescription fractions",
                measurement_source_concept_id=our_concept_id(
                    "RTC Prescription", "fractions"
                ),
                measurement_event_id=episode.episode_id,
                meas_event_field_concept_id=field_concept_id(
                    session, "episode.episode_id"
                ),
            )
        )
        session.flush()
    return episode.episode_id, procedure.procedure_occurrence_id


def dose_grid(
    session: Session,
    person_id: int,
    episode: tuple[int, int],
    structures: dict[str, tuple[float, np.ndarray, float]],
    summation: str = "PLAN",
) -> None:
    """One dose grid with the given structures: name -> (bin width, cc/bin, outside)."""
    n = next(_uid)
    image = cdm.ImageOccurrence(
        person_id=person_id,
        procedure_occurrence_id=episode[1],
        image_occurrence_date=START,
        image_study_uid=f"1.2.{n}",
        image_series_uid=f"1.2.{n}.1",
        modality_concept_id=0,
    )
    session.add(image)
    session.flush()
    dataset = IngestDataset(
        dose_sop_instance_uid=f"1.2.{n}.2",
        person_id=person_id,
        centre="C1",
        study_instance_uid=f"1.2.{n}",
        frame_of_reference_uid=f"1.2.{n}.3",
        structure_set_sop_instance_uid=f"1.2.{n}.4",
        dose_summation_type=summation,
        episode_id=episode[0],
        version=1,
        content_sha256="0" * 64,
        warnings="[]",
        loaded_at=datetime.datetime.now(datetime.UTC),
    )
    session.add(dataset)
    session.flush()
    for roi, (name, (width, diff, outside)) in enumerate(structures.items(), 1):
        inside = float(diff.sum())
        dvh = DVH(
            volume_cc=inside + outside,
            outside_grid_cc=outside,
            min_gy=0.0,
            mean_gy=0.0,
            max_gy=width * diff.size,
            bin_width_gy=width,
            differential_cc=diff,
        )
        session.add(
            Dvh(
                dataset_id=dataset.dataset_id,
                person_id=person_id,
                image_occurrence_id=image.image_occurrence_id,
                roi_number=roi,
                roi_name=name,
                tg263_name=name,
                structure_concept_id=0,
                is_target=False,
                volume_cc=dvh.volume_cc,
                outside_grid_cc=outside,
                min_gy=0.0,
                mean_gy=0.0,
                max_gy=dvh.max_gy,
                bin_width_gy=width,
                n_bins=diff.size,
                differential_cc=pack_dvh(dvh),
                engine="test",
            )
        )
    session.flush()


def two_level(k: int) -> np.ndarray:
    """0.5-Gy bins: 200 cc in [10+k, 10.5+k) Gy, 300 cc in [30+k, 30.5+k) Gy."""
    diff = np.zeros(200)
    diff[20 + 2 * k] = 200.0
    diff[60 + 2 * k] = 300.0
    return diff


def two_level_truth(k: int) -> tuple[list[float], list[float]]:
    return [10.25 + k, 30.25 + k], [0.4, 0.6]


def grade(  # noqa: PLR0917
    session: Session,
    person_id: int,
    pseudonym: str,
    term: str,
    value: int,
    day: int,
    timepoint: str = "m3",
) -> None:
    grading = ToxicityGrading(
        resource_id=f"ae-{next(_uid)}",
        subject=SubjectIdentifier(PSEUDONYM_SYSTEM, pseudonym),
        version="5.0",
        term=term,
        grade=value,
        assessed_on=START + datetime.timedelta(days=day),
        timepoint=timepoint,
    )
    store_toxicity(session, Assessment(person_id, timepoint), grading)


def questionnaire(  # noqa: PLR0917
    session: Session,
    person_id: int,
    pseudonym: str,
    timepoint: str,
    day: int,
    fatigue: tuple[int, int, int] = (1, 1, 1),
    global_health: tuple[int, int] = (7, 7),
) -> None:
    answers: dict[int, int | None] = dict.fromkeys(range(1, 31), 1)
    answers[10], answers[12], answers[18] = fatigue
    answers[29], answers[30] = global_health
    response = PromResponse(
        resource_id=f"qr-{next(_uid)}",
        instrument="QLQ-C30",
        subject=SubjectIdentifier(PSEUDONYM_SYSTEM, pseudonym),
        authored=datetime.datetime.combine(
            START + datetime.timedelta(days=day), datetime.time(12), datetime.UTC
        ),
        values=answers,
    )
    store_prom(session, Assessment(person_id, timepoint), response)


# -- the hand-made cohort -----------------------------------------------------------


class Cohort:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.c1 = add_centre(session, "C1")
        self.c2 = add_centre(session, "C2")
        self.ids: dict[str, int] = {}

    def patient(
        self,
        name: str,
        k: int,
        *,
        centre: cdm.CareSite | None = None,
        n_fractions: int | None = 30,
        sex: str = "F",
        site: str = "lung",
        scopes: list[str] | None = None,
        organ: str = "Lungs",
    ) -> int:
        pid = enrol(
            self.session, centre or self.c1, name, sex=sex, site=site, scopes=scopes
        )
        self.ids[name] = pid
        episode = course(self.session, pid, START, n_fractions)
        dose_grid(self.session, pid, episode, {organ: (0.5, two_level(k), 0.0)})
        return pid

    def tox(self, name: str, term: str, value: int, day: int, tp: str = "m3") -> None:
        grade(self.session, self.ids[name], name, term, value, day, tp)


@pytest.fixture
def ctcae_cohort(session: Session) -> Cohort:
    c = Cohort(session)
    s = session
    c.patient("P01", 1, sex="M")
    c.tox("P01", "Pneumonitis", 2, 100)
    c.patient("P02", 2)
    c.tox("P02", "Pneumonitis", 1, 100)
    c.tox("P02", "Pneumonitis", 0, 370, "m12")
    c.patient("P03", 3)
    c.tox("P03", "Pneumonitis", 0, 200, "m6")
    c.patient("P04", 4)
    c.tox("P04", "Pneumonitis", 0, 90)
    record_death(s, c.ids["P04"], START + datetime.timedelta(days=150))
    c.patient("P05", 5)
    c.tox("P05", "Pneumonitis", 0, 300, "m6")
    c.tox("P05", "Pneumonitis", 3, 400, "m12")
    c.patient("P06", 6)
    c.tox("P06", "Pneumonitis", 2, -10, "baseline")
    c.tox("P06", "Pneumonitis", 0, 370, "m12")
    c.patient("P07", 7, organ="Heart")
    c.tox("P07", "Pneumonitis", 0, 370, "m12")
    pid = c.patient("P08", 8)
    dose_grid(s, pid, course(s, pid, START, 5), {"Lungs": (0.5, two_level(0), 0.0)})
    c.patient("P09", 9, scopes=["proms"])
    c.patient("P10", 10)
    c.tox("P10", "Cough", 2, 50)
    c.tox("P10", "Pneumonitis", 0, 380, "m12")
    pid = enrol(s, c.c1, "P11")
    c.ids["P11"] = pid
    dose_grid(s, pid, course(s, pid, START, 30), {"Lungs": (0.5, two_level(1), 30.0)})
    c.tox("P11", "Pneumonitis", 0, 370, "m12")
    c.patient("P12", 12, n_fractions=None)
    c.tox("P12", "Pneumonitis", 0, 366, "m12")
    pid = c.patient("P13", 13)
    dose_grid(
        s,
        pid,
        course(s, pid, START, 30),
        {"Lungs": (0.5, two_level(14), 0.0)},
        summation="MULTI_PLAN",
    )
    c.tox("P13", "Pneumonitis", 2, 300, "m12")
    c.patient("P14", 15)
    c.tox("P14", "Pneumonitis", 0, 200, "m6")
    record_last_contact(s, c.ids["P14"], START + datetime.timedelta(days=400))
    # Centre C2: one breast patient, 0.01-Gy bins merged to 0.1 Gy.
    pid = enrol(s, c.c2, "Q01", sex="M", year=1950)
    c.ids["Q01"] = pid
    fine = np.zeros(2100)
    fine[2000:2010] = 50.0  # 500 cc in [20.00, 20.10) Gy -> one 0.1-Gy bin at 20.05
    dose_grid(s, pid, course(s, pid, START, 20), {"Lungs": (0.01, fine, 0.0)})
    c.tox("Q01", "Pneumonitis", 2, 30, "eot")
    c.patient("Q02", 16, centre=c.c2, site="breast")
    c.tox("Q02", "Pneumonitis", 0, 365, "m12")
    return c


def admin(session: Session):  # type: ignore[no-untyped-def]
    return add_user(session, "boss", "admin", [], "password-123")


def included(ds) -> dict[str, int]:  # type: ignore[no-untyped-def]
    assert ds.table.outcome is not None
    return dict(zip(ds.table.patient_ids, ds.table.outcome.tolist(), strict=True))


def excluded(ds) -> dict[str, ExclusionReason]:  # type: ignore[no-untyped-def]
    return {e.patient_id: e.reason for e in ds.exclusions}


def stored(code: str, ids: dict[str, int], found: dict[str, Any]) -> dict[str, Any]:
    """Key a project dataset's results by stored pseudonym (every key a label)."""
    back = labels(code, ids)
    return {back[k]: v for k, v in found.items()}


# -- tests --------------------------------------------------------------------------


def test_hand_built_rows_follow_the_etl_conventions(session: Session, ctcae_cohort):
    pid = ctcae_cohort.ids["P01"]
    row = session.scalars(select(Dvh).where(Dvh.person_id == pid)).one()
    dvh = dvh_from_row(row)
    assert dvh.differential_cc[22] == 200.0
    assert dvh.differential_cc[62] == 300.0
    episode = session.scalar(
        select(IngestDataset.episode_id).where(IngestDataset.person_id == pid)
    )
    assert episode_fractions(session, episode) == 30
    no_fx = ctcae_cohort.ids["P12"]
    episode = session.scalar(
        select(IngestDataset.episode_id).where(IngestDataset.person_id == no_fx)
    )
    assert episode_fractions(session, episode) is None


def test_ctcae_dataset_inclusion_outcomes_and_doses(session: Session, ctcae_cohort):
    ds = extract_dataset(
        session, admin(session), DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d")
    )
    assert included(ds) == {
        "P01": 1,  # grade 2 on day 100
        "P02": 0,  # grade 1 only; assessed on day 370
        "P05": 0,  # grade 3 on day 400: after the window, followed >= 365
        "P10": 0,  # cough is not the endpoint
        "P12": 0,  # fractions unknown: fine for physical dose
        "P13": 1,  # MULTI_PLAN composite chosen; grade 2 on day 300
        "Q01": 1,
        "Q02": 0,  # followed exactly 365 days
    }
    assert excluded(ds) == {
        "P03": R.SHORT_FOLLOWUP,  # last assessment day 200
        "P04": R.DIED_IN_WINDOW,  # died day 150
        "P06": R.BASELINE_TOXICITY,
        "P07": R.NO_ORGAN_DVH,
        "P08": R.SEVERAL_DOSE_GRIDS,
        "P09": R.NO_DATA_CONSENT,
        "P11": R.OUTSIDE_DOSE_GRID,  # 30 cc of 530 outside
        "P14": R.SHORT_FOLLOWUP,  # assessed day 200 (contact on day 400)
    }
    assert ds.n_selected == 16
    summary = ds.summary()
    assert summary["n_included"] == 8
    assert summary["n_events"] == 3
    assert summary["excluded"]["short_followup"] == 2
    # Doses: the stored DVH at bin centres, volume fractions.
    t = ds.table
    for i, pid in enumerate(t.patient_ids):
        keep = t.dvhs.volume_fraction[i] > 0
        dose, vol = t.dvhs.dose_gy[i][keep], t.dvhs.volume_fraction[i][keep]
        if pid == "Q01":
            assert dose.tolist() == pytest.approx([20.05])
            assert vol.tolist() == pytest.approx([1.0])
            continue
        k = {"P13": 14, "Q02": 16}.get(pid, int(pid[1:]))
        want_d, want_v = two_level_truth(k)
        assert dose.tolist() == pytest.approx(want_d)
        assert vol.tolist() == pytest.approx(want_v)
    nfx = dict(zip(t.patient_ids, t.dvhs.n_fractions.tolist(), strict=True))
    assert nfx["P01"] == 30
    assert nfx["Q01"] == 20
    assert math.isnan(nfx["P12"])
    cov = t.covariates.set_index(np.array(t.patient_ids))
    assert cov.loc["P01", "age_years"] == 65
    assert cov.loc["Q01", "age_years"] == 75
    assert cov.loc["P01", "sex_male"] == 1
    assert cov.loc["P02", "sex_male"] == 0
    assert cov.loc["Q02", "site"] == "breast"
    assert cov.loc["P01", "site"] == "lung"


def test_ctcae_time_to_event_and_censoring_options(session: Session, ctcae_cohort):
    user = admin(session)
    ds = extract_dataset(
        session, user, DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d")
    )
    assert ds.time_to_event is not None
    tte = {
        p: (d, s)
        for p, d, s in ds.time_to_event[
            ["patient_id", "duration_days", "status"]
        ].itertuples(index=False)
    }
    assert tte == {
        "P01": (100, 1),
        "P02": (365, 0),  # censored at the window
        "P03": (200, 0),
        "P04": (150, 2),  # death, competing
        "P05": (365, 0),  # event after the window
        "P10": (365, 0),
        "P12": (365, 0),
        "P13": (300, 1),
        "P14": (200, 0),  # last assessment
        "Q01": (30, 1),
        "Q02": (365, 0),
    }
    spec = DatasetSpec(
        "Lungs", "ctcae:Pneumonitis|Cough>=2@365d", censor_at="last_contact"
    )
    ds = extract_dataset(session, user, spec)
    got = included(ds)
    assert got["P10"] == 1  # cough counts now
    assert got["P14"] == 0  # followed to the last contact on day 400
    eqd2 = DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d", alpha_beta_gy=3.0)
    ds = extract_dataset(session, user, eqd2)
    assert excluded(ds)["P12"] is R.MISSING_FRACTIONS
    assert "P12" not in included(ds)
    slack = DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d", followup_slack_days=170)
    got = included(extract_dataset(session, user, slack))
    assert got["P03"] == 0
    assert got["P14"] == 0


def test_selection_by_centre_site_and_project(session: Session, ctcae_cohort):
    user = admin(session)
    spec = DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d", centre="C2")
    assert included(extract_dataset(session, user, spec)) == {"Q01": 1, "Q02": 0}
    spec = DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d", site="breast")
    ds = extract_dataset(session, user, spec)
    assert (ds.n_selected, included(ds)) == (1, {"Q02": 0})
    create_project(
        session,
        "LUNG1",
        name="Lung",
        protocol="p",
        data_controller="dc",
        expires_on=D(2099, 1, 1),
        today=TODAY,
    )
    ids = ctcae_cohort.ids
    attach(
        session, "LUNG1", [ids["P01"], ids["P03"], ids["Q01"]], actor="t", today=TODAY
    )
    spec = DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d", project="LUNG1")
    ds = extract_dataset(session, user, spec)
    assert stored("LUNG1", ids, included(ds)) == {"P01": 1, "Q01": 1}
    assert stored("LUNG1", ids, excluded(ds)) == {"P03": R.SHORT_FOLLOWUP}
    with pytest.raises(DatasetError, match="site"):
        extract_dataset(session, user, DatasetSpec("Lungs", "ctcae:X>=2@1d", site="x"))
    with pytest.raises(DatasetError, match="unknown CTCAE term"):
        extract_dataset(session, user, DatasetSpec("Lungs", "ctcae:Xerostomia>=2@9d"))


def test_researcher_sees_project_clinician_centre_and_reads_are_audited(
    session: Session, ctcae_cohort
):
    ids = ctcae_cohort.ids
    create_project(
        session,
        "LUNG1",
        name="Lung",
        protocol="p",
        data_controller="dc",
        expires_on=D(2099, 1, 1),
        today=TODAY,
    )
    create_project(
        session,
        "OTHER",
        name="Other",
        protocol="p",
        data_controller="dc",
        expires_on=D(2099, 1, 1),
        today=TODAY,
    )
    attach(
        session, "LUNG1", [ids["P01"], ids["P02"], ids["Q01"]], actor="t", today=TODAY
    )
    attach(session, "OTHER", [ids["P05"]], actor="t", today=TODAY)
    researcher = add_user(session, "rita", "researcher", [], "password-123")
    add_member(session, "LUNG1", "rita", "analyst", today=TODAY)
    clinician = add_user(session, "carl", "clinician", ["C2"], "password-123")
    viewer = add_user(session, "vera", "viewer", ["C1"], "password-123")
    spec = DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d")

    before = session.scalar(select(func.max(AuditRecord.record_id))) or 0
    ds = extract_dataset(session, researcher, spec)
    assert stored("LUNG1", ids, included(ds)) == {"P01": 1, "P02": 0, "Q01": 1}
    assert ds.exclusions == ()
    record = session.scalars(
        select(AuditRecord).where(AuditRecord.record_id > before)
    ).one()
    assert (record.actor, record.action, record.person_count) == (
        "rita",
        "ntcp dataset",
        3,
    )
    assert "Lungs" in record.detail
    assert "P01" not in record.detail
    persons = set(
        session.scalars(
            select(AuditPerson.person_id).where(
                AuditPerson.record_id == record.record_id
            )
        )
    )
    assert persons == {ids["P01"], ids["P02"], ids["Q01"]}

    with pytest.raises(PermissionDeniedError, match="OTHER"):
        extract_dataset(
            session, researcher, DatasetSpec("Lungs", spec.endpoint, project="OTHER")
        )
    with pytest.raises(PermissionDeniedError, match="centre"):
        extract_dataset(
            session, researcher, DatasetSpec("Lungs", spec.endpoint, centre="C1")
        )

    ds = extract_dataset(session, "carl", spec)
    assert included(ds) == {"Q01": 1, "Q02": 0}
    assert ds.n_selected == 2
    with pytest.raises(PermissionDeniedError, match="C1"):
        extract_dataset(
            session, clinician, DatasetSpec("Lungs", spec.endpoint, centre="C1")
        )
    with pytest.raises(PermissionDeniedError):
        extract_dataset(session, viewer, spec)


def test_qlq_c30_deterioration_dataset(session: Session):
    c = Cohort(session)
    s = session

    def prom(name: str, tp: str, day: int, fa=(1, 1, 1), ql=(7, 7)) -> None:  # type: ignore[no-untyped-def]
        questionnaire(s, c.ids[name], name, tp, day, fa, ql)

    c.patient("R1", 1)  # FA 0 -> 33.3 (rise 33): deterioration; QL 100 -> 83.3
    prom("R1", "baseline", -5)
    prom("R1", "m12", 365, (2, 2, 2), (6, 6))
    c.patient("R2", 2)  # no change
    prom("R2", "baseline", -5)
    prom("R2", "m12", 360)
    c.patient("R3", 3)
    prom("R3", "baseline", -5)
    c.patient("R4", 4)
    prom("R4", "m12", 365)
    c.patient("R5", 5)
    prom("R5", "m6", 180)
    c.patient("R6", 6)  # FA 11.1 -> 22.2 (rise 11.1 >= 10); QL 100 -> 100
    prom("R6", "baseline", -3, (2, 1, 1))
    prom("R6", "m12", 370, (2, 2, 1))
    c.patient("R7", 7)  # FA 22.2 -> 11.1: an improvement
    prom("R7", "baseline", -3, (2, 2, 1), (6, 6))
    prom("R7", "m12", 370, (2, 1, 1), (7, 7))
    user = admin(session)
    ds = extract_dataset(session, user, DatasetSpec("Lungs", "qlqc30:FA-10@m12"))
    assert included(ds) == {"R1": 1, "R2": 0, "R6": 1, "R7": 0}
    assert excluded(ds) == {
        "R3": R.NO_PROM_AT_TIMEPOINT,
        "R4": R.NO_PROM_BASELINE,
        "R5": R.NO_PROM_EITHER,
    }
    assert ds.time_to_event is None
    base = dict(
        zip(ds.table.patient_ids, ds.table.covariates["baseline_score"], strict=True)
    )
    assert base["R1"] == pytest.approx(0.0)
    assert base["R6"] == pytest.approx(100 / 9)
    assert base["R7"] == pytest.approx(200 / 9)
    ds = extract_dataset(session, user, DatasetSpec("Lungs", "qlqc30:QL-10@m12"))
    assert included(ds) == {"R1": 1, "R2": 0, "R6": 0, "R7": 0}  # R7 improved


def test_csv_of_dataset_round_trips_and_snapshot_hash_tracks_content(
    session: Session, ctcae_cohort, tmp_path: Path
):
    ds = extract_dataset(
        session, admin(session), DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d")
    )
    path = tmp_path / "cohort.csv"
    path.write_bytes(ds.to_csv().encode("utf-8"))
    table = read_cohort_csv(path, covariates=["age_years", "sex_male"])
    assert table.patient_ids == ds.table.patient_ids
    assert np.array_equal(table.outcome, ds.table.outcome)
    assert np.array_equal(table.dvhs.dose_gy, ds.table.dvhs.dose_gy)
    assert np.array_equal(table.dvhs.volume_fraction, ds.table.dvhs.volume_fraction)
    np.testing.assert_array_equal(table.dvhs.n_fractions, ds.table.dvhs.n_fractions)
    assert (
        table.covariates["age_years"].tolist()
        == ds.table.covariates["age_years"].tolist()
    )
    user = admin_two(session)
    again = extract_dataset(session, user, ds.spec)
    assert again.table.sha256 == ds.table.sha256
    other = extract_dataset(
        session, user, DatasetSpec("Lungs", "ctcae:Pneumonitis>=1@365d")
    )
    assert included(other)["P02"] == 1  # grade 1 on day 100
    assert other.table.sha256 != ds.table.sha256


def admin_two(session: Session):  # type: ignore[no-untyped-def]
    return add_user(session, "boss2", "admin", [], "password-123")


def test_empty_dataset_lists_every_exclusion(session: Session, ctcae_cohort):
    ds = extract_dataset(
        session, admin(session), DatasetSpec("Brain", "ctcae:Pneumonitis>=2@365d")
    )
    assert ds.table.patient_ids == []
    assert set(excluded(ds).values()) == {R.NO_ORGAN_DVH, R.NO_DATA_CONSENT}
    assert len(ds.exclusions) == ds.n_selected == 16


# -- end to end: rtcohort ntcp fit --from-db ---------------------------------------

TRUE = {"td50_gy": 30.0, "m": 0.3, "n": 0.5}
N_SIM = 500


@pytest.fixture
def simulated_db(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[CliRunner, object]:
    from omop.engine import make_engine, session_factory
    from rtcohort.cli import app

    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "admin-password")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    runner = CliRunner()
    res = runner.invoke(app, ["db", "upgrade"])
    assert res.exit_code == 0, res.output
    sim = simulate_lkb_cohort(N_SIM, **TRUE, alpha_beta_gy=3.0, seed=20250)
    engine = make_engine(fresh_url)
    with session_factory(engine).begin() as session:
        centre = add_centre(session, "SIM")
        for i in range(N_SIM):
            name = f"S{i:04d}"
            sex, year = ("M" if i % 2 else "F"), 1940 + (i * 7) % 40
            pid = enrol(session, centre, name, sex=sex, year=year)
            episode = course(session, pid, START, int(sim.dvhs.n_fractions[i]))
            diff = sim.dvhs.volume_fraction[i] * 1000.0
            dose_grid(session, pid, episode, {"Lungs": (0.5, diff, 0.0)})
            if sim.outcome[i]:
                grade(session, pid, name, "Pneumonitis", 2, 90)
            else:
                grade(session, pid, name, "Pneumonitis", 0, 370, "m12")
    engine.dispose()
    return runner, sim


def test_cli_fit_from_db_recovers_simulated_lkb(simulated_db, tmp_path: Path):
    from omop.engine import make_engine, session_factory
    from rtcohort.cli import app
    from rtcohort.settings import get_settings

    runner, sim = simulated_db
    out = tmp_path / "fit.json"
    args = ["ntcp", "fit", "--from-db", "--organ", "Lungs"]
    args += ["--endpoint", "ctcae:Pneumonitis>=2@365d", "--model", "lkb"]
    res = runner.invoke(app, [*args, "--alpha-beta", "3", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert f"{N_SIM} selected, {N_SIM} included" in res.output
    result = json.loads(out.read_text())
    assert result["n_patients"] == N_SIM
    assert result["n_events"] == int(sim.outcome.sum())
    for name, truth in TRUE.items():
        lo, hi = result["parameters"][name]["ci95"]
        assert lo < truth < hi, (name, lo, truth, hi)
    assert result["dataset"]["n_included"] == N_SIM
    assert result["provenance"]["source"].startswith("omop: organ Lungs")
    # The same fit as on the simulated DVHs directly (nothing added, nothing lost).
    from ntcp.cohort_csv import CohortTable

    direct = CohortTable(
        [f"S{i:04d}" for i in range(N_SIM)], sim.dvhs, sim.outcome, _empty(), "x"
    )
    ref, *_ = fit_cohort(direct, "lkb", alpha_beta_gy=3.0)
    for name in TRUE:
        assert result["parameters"][name]["estimate"] == pytest.approx(
            ref["parameters"][name]["estimate"], rel=1e-6
        )
    # The snapshot hash is the extracted dataset's; the read is audited as admin.
    engine = make_engine(get_settings().resolved_database_url())
    with session_factory(engine).begin() as session:
        ds = extract_dataset(
            session,
            "admin",
            DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d", alpha_beta_gy=3.0),
        )
        assert result["provenance"]["data_sha256"] == ds.table.sha256
        actions = session.execute(
            select(AuditRecord.actor, AuditRecord.person_count)
            .where(AuditRecord.action == "ntcp dataset")
            .order_by(AuditRecord.record_id)
        ).all()
    engine.dispose()
    assert actions[0] == ("admin", N_SIM)
    # Bad input: one line, exit 2.
    res = runner.invoke(app, ["ntcp", "fit", "--from-db", "--json", str(out)])
    assert res.exit_code == 2
    assert "needs --organ and --endpoint" in res.output
    res = runner.invoke(app, [*args[:4], "Heart", *args[5:], "--json", str(out)])
    assert res.exit_code == 2
    assert "no patient qualifies" in res.output
    assert "no_organ_dvh 500" in res.output
    logistic = [*args[:-1], "logistic", "--covariates", "age_years,sex_male"]
    res = runner.invoke(app, [*logistic, "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "age_years" in json.loads(out.read_text())["parameters"]


def _empty():  # type: ignore[no-untyped-def]
    import pandas as pd

    return pd.DataFrame(index=range(N_SIM))


def test_cli_from_db_bad_input_before_any_read(tmp_path: Path, monkeypatch):
    from rtcohort.cli import app

    monkeypatch.setenv("RTCOHORT_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    out = str(tmp_path / "o.json")
    base = ["ntcp", "fit", "--from-db", "--json", out]
    res = runner.invoke(app, [*base, "--organ", "Lungs", "--endpoint", "ctcae:P>2"])
    assert res.exit_code == 2
    assert "expected ctcae" in res.output
    res = runner.invoke(app, [*base, "--endpoint", "ctcae:Pneumonitis>=2@365d"])
    assert res.exit_code == 2
    assert "needs --organ and --endpoint" in res.output
    res = runner.invoke(
        app,
        [
            *base[:2],
            "--cohort",
            "x.csv",
            *base[2:],
            "--organ",
            "Lungs",
            "--endpoint",
            "ctcae:Pneumonitis>=2@365d",
        ],
    )
    assert res.exit_code == 2
    assert "exclude each other" in res.output
    res = runner.invoke(
        app, [*base, "--organ", "Lungs", "--endpoint", "qlqc30:FA-10@m12"]
    )
    assert res.exit_code == 2  # the database was never upgraded
    assert "rtcohort db upgrade" in res.output
    assert "Traceback" not in res.output
