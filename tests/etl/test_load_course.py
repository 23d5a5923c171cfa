"""`import` of a course of two plans on one frame: course-level metrics (issue 18.3).

Two analytic phantoms of one patient (same frame of reference, structure set and CT)
with uniform doses and their own fractionations; the second plan and dose get new
UIDs. Truth by hand: 50 Gy / 25 + 16 Gy / 2 -> physical 66 Gy, EQD2 = 50 + 16 (8 +
a/b) / (2 + a/b): 85.2 Gy for organs (a/b 3), 74 Gy for targets (a/b 10).
Both backends.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from etl.ingest.run import run_import
from etl.store.course_metrics import read_course_metrics
from omop.cdm import Episode, Person
from omop.quality.rt_checks import rt_checks
from omop.quality.run import run_check
from omop.vocab.standard import RT_COURSE_EPISODE
from tests.etl.ingest_corpus import small_spec, write_patient
from tests.etl.ingest_db import Db, make_db
from tests.etl.test_course_dates import _consent


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("course"))


def _plan(dose_gy: float, fractions: int) -> dict:
    return small_spec(
        dose=[{"dose_gy": dose_gy}],
        plan={"target": "PTV", "prescription_gy": dose_gy, "fractions": fractions},
    )


def write_course(root: Path, pid: str, seed: int, boost_after_days: int = 0) -> Path:
    """A folder with plan A (50 Gy / 25) and a boost B (16 Gy / 2) on one frame.

    ``boost_after_days``: the boost's study date (plan and dose) that many days after
    plan A's.
    """
    folder, boost = root / "course", root / "boost"
    write_patient(folder, pid, seed, _plan(50.0, 25))
    write_patient(boost, pid, seed, _plan(16.0, 2))
    plan = pydicom.dcmread(boost / "RTPLAN.dcm")
    plan.SOPInstanceUID = plan.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    plan.SeriesInstanceUID = generate_uid()
    plan.RTPlanLabel = "Boost"
    dose = pydicom.dcmread(boost / "RTDOSE.dcm")
    if boost_after_days:
        day = _day(plan.StudyDate) + datetime.timedelta(days=boost_after_days)
        plan.StudyDate = dose.StudyDate = day.strftime("%Y%m%d")
    plan.save_as(folder / "RTPLAN_boost.dcm", enforce_file_format=True)
    dose.SOPInstanceUID = dose.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dose.SeriesInstanceUID = generate_uid()
    dose.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = plan.SOPInstanceUID
    dose.save_as(folder / "RTDOSE_boost.dcm", enforce_file_format=True)
    shutil.rmtree(boost)
    (folder / "truth.json").unlink()
    return folder


def _day(text: str) -> datetime.date:
    return (
        datetime.datetime.strptime(text, "%Y%m%d").replace(tzinfo=datetime.UTC).date()
    )


def _person(db: Db, pid: str) -> int:
    from etl.deid.pseudonymise import pseudonym
    from tests.etl.ingest_db import KEY

    with db.factory() as session:
        person = (
            session.query(Person)
            .filter_by(person_source_value=pseudonym(KEY, pid))
            .one()
        )
        return int(person.person_id)


def test_two_plans_on_one_frame_store_course_metrics(db: Db, tmp_path: Path) -> None:
    folder = write_course(tmp_path, "COURSE-1", 1801)
    _consent(db, "COURSE-1")  # a registered person (year of birth) for the checks
    summary = run_import(db.factory, [folder], db.options())
    assert summary.loaded == 2
    assert summary.courses == 1
    person_id = _person(db, "COURSE-1")
    with db.factory() as session:
        episodes = (
            session.query(Episode)
            .filter_by(person_id=person_id, episode_concept_id=RT_COURSE_EPISODE)
            .order_by(Episode.episode_id)
            .all()
        )
        ids = [e.episode_id for e in episodes]
        metrics = read_course_metrics(session, ids)
    courses = [e.episode_id for e in episodes if e.episode_parent_id not in ids]
    assert len(courses) == 1  # one course EPISODE; the plans' are its children
    assert {m.episode_id for m in metrics} == set(courses)
    got = {(m.structure, m.metric): m for m in metrics}
    heart, ptv = "Heart", "PTV"
    assert got[heart, "Mean[Gy]"].value == pytest.approx(66.0, abs=1e-3)
    assert got[heart, "Mean[Gy]"].unit == "Gy"
    assert got[heart, "EQD2 Mean[Gy]"].value == pytest.approx(85.2, abs=1e-3)
    assert "alpha/beta 3 Gy" in got[heart, "EQD2 Mean[Gy]"].label
    assert got[ptv, "D95%[Gy]"].value == pytest.approx(66.0, abs=1e-3)
    assert got[ptv, "EQD2 D95%[Gy]"].value == pytest.approx(74.0, abs=1e-3)
    assert got[heart, "V65Gy[%]"].value == pytest.approx(100.0, abs=1e-6)
    assert got[heart, "Volume[cc]"].unit == "cm3"
    # re-importing changes nothing; a new version of one dose re-sums, not doubles
    n = len(metrics)
    assert run_import(db.factory, [folder], db.options()).courses == 0
    dose = pydicom.dcmread(folder / "RTDOSE_boost.dcm")
    dose.SeriesDescription = "re-sent"
    dose.save_as(folder / "RTDOSE_boost.dcm", enforce_file_format=True)
    assert run_import(db.factory, [folder], db.options()).courses == 1
    with db.factory() as session:
        assert len(read_course_metrics(session, ids)) == n


def test_quality_checks_accept_course_level_metrics(db: Db, tmp_path: Path) -> None:
    folder = write_course(tmp_path, "COURSE-2", 1802)
    _consent(db, "COURSE-2")
    assert run_import(db.factory, [folder], db.options()).courses == 1
    checks = {c.name: c for c in rt_checks()}
    with db.factory() as session:
        for name in ("rtDoseMetricLinked", "rtDoseMetricUnit"):
            result = run_check(session, checks[name])
            assert result.num_violated_rows == 0, name


def test_no_ohdsi_check_on_measurement_fails_with_course_metrics(
    db: Db, tmp_path: Path
) -> None:
    from omop.quality import run_quality

    folder = write_course(tmp_path, "COURSE-3", 1803)
    _consent(db, "COURSE-3")
    assert run_import(db.factory, [folder], db.options()).courses == 1
    with db.factory() as session:
        report = run_quality(session)
    ran = [r for r in report.results if r.check.table == "measurement"]
    assert sum(r.num_denominator_rows > 0 for r in ran) > 5
    failed = [
        (r.check.name, r.check.field, r.error)
        for r in report.results
        if r.check.table == "measurement" and (r.failed or r.error)
    ]
    assert failed == []
