"""Our RT checks (issue #17 part 4) on a database violating and one satisfying them.

The data are loaded through the production path (DICOM import, consent, CTCAE
writer) on each backend; violations no writer produces are direct updates.
"""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from instruments.fhir import PSEUDONYM_SYSTEM, SubjectIdentifier
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.store import Assessment, store_toxicity
from omop import cdm
from omop.quality import Check, all_checks
from omop.quality.run import run_check
from omop.vocab.registry import our_concept_id
from tests.etl.ingest_db import Db
from tests.omop.quality.rt_world import course_of, load_patient


@pytest.fixture(scope="module")
def loaded(db: Db, tmp_path_factory: pytest.TempPathFactory) -> int:
    return load_patient(db, tmp_path_factory.mktemp("rt-patient"), "RTQ-1", 311)


_course = course_of


def _check(s: Session, name: str) -> Check:
    found = [c for c in all_checks(s.get_bind().dialect.name) if c.name == name]
    assert len(found) == 1
    return found[0]


def _counts(s: Session, name: str) -> tuple[int, int]:
    result = run_check(s, _check(s, name))
    assert result.error is None, result.error
    return result.num_violated_rows, result.num_denominator_rows


def test_course_has_disease_parent(db: Db, loaded: int) -> None:
    with db.factory() as s:
        assert _counts(s, "rtCourseHasDiseaseParent") == (0, 1)
        s.execute(
            update(cdm.Episode)
            .where(cdm.Episode.episode_id == _course(s, loaded).episode_id)
            .values(episode_parent_id=None)
        )
        assert _counts(s, "rtCourseHasDiseaseParent") == (1, 1)
        s.rollback()


def _metric(s: Session, pid: int, code: str) -> cdm.Measurement:
    return s.scalars(
        select(cdm.Measurement)
        .where(
            cdm.Measurement.person_id == pid,
            cdm.Measurement.measurement_source_concept_id
            == our_concept_id("RTC Dose Metric", code),
        )
        .order_by(cdm.Measurement.measurement_id)
        .limit(1)
    ).one()


def test_dose_metric_linked_and_unit(db: Db, loaded: int) -> None:
    with db.factory() as s:
        violated, metrics = _counts(s, "rtDoseMetricLinked")
        assert violated == 0 and metrics > 0
        assert _counts(s, "rtDoseMetricUnit") == (0, metrics)
        m = _metric(s, loaded, "Mean[Gy]")
        s.execute(  # break the IMAGE_FEATURE link of one metric
            update(cdm.ImageFeature)
            .where(cdm.ImageFeature.image_feature_event_id == m.measurement_id)
            .values(image_feature_event_id=-1)
        )
        s.execute(
            update(cdm.Measurement)
            .where(
                cdm.Measurement.measurement_id
                == _metric(s, loaded, "D2%[Gy]").measurement_id
            )
            .values(unit_source_value=None)
        )
        assert _counts(s, "rtDoseMetricLinked") == (1, metrics)
        assert _counts(s, "rtDoseMetricUnit") == (1, metrics)
        s.rollback()


def test_eqd2_present_when_fractions_known(db: Db, loaded: int) -> None:
    with db.factory() as s:
        violated, physical = _counts(s, "rtEqd2WhenFractionsKnown")
        assert violated == 0 and physical > 0
        eqd2 = _metric(s, loaded, "EQD2 Mean[Gy]")
        s.execute(  # the EQD2 metric of one structure is no longer a dose metric
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == eqd2.measurement_id)
            .values(measurement_source_concept_id=0)
        )
        assert _counts(s, "rtEqd2WhenFractionsKnown") == (1, physical)
        s.rollback()


def test_assessment_window_is_a_warning_with_a_threshold(db: Db, loaded: int) -> None:
    with db.factory() as s:
        end = _course(s, loaded).episode_end_date
        assert end is not None
        subject = SubjectIdentifier(PSEUDONYM_SYSTEM, "RTQ-1")
        for i, (tp, days) in enumerate((("m3", 91), ("m6", 182 + 31))):
            grading = ToxicityGrading(
                f"ae-{i}",
                subject,
                "5.0",
                "Dry mouth",
                1,
                end + datetime.timedelta(days=days),
                timepoint=tp,
            )
            store_toxicity(s, Assessment(loaded, tp), grading)
        check = _check(s, "rtAssessmentInWindow")
        assert check.severity == "warning" and check.threshold > 0
        result = run_check(s, check)
        # m3 on its target day is inside; m6 31 days late is outside (window 30)
        assert (result.num_violated_rows, result.num_denominator_rows) == (1, 2)
        assert result.failed  # 50% > the threshold
        s.rollback()


def test_events_inside_the_observation_period(db: Db, loaded: int) -> None:
    with db.factory() as s:
        checks = [
            c
            for c in all_checks(s.get_bind().dialect.name)
            if c.name == "rtEventInObservationPeriod"
        ]
        before = {c.table: run_check(s, c) for c in checks}
        assert all(r.num_violated_rows == 0 for r in before.values())
        assert before["episode"].num_denominator_rows == 2  # course + disease
        assert before["image_occurrence"].num_denominator_rows > 0
        course = _course(s, loaded)
        s.execute(  # the old rule: a period that ends the day before the course
            update(cdm.ObservationPeriod)
            .where(cdm.ObservationPeriod.person_id == loaded)
            .values(
                observation_period_end_date=course.episode_start_date
                - datetime.timedelta(days=1)
            )
        )
        after = {c.table: run_check(s, c) for c in checks}
        assert after["episode"].num_violated_rows == 2
        assert after["measurement"].num_violated_rows == (
            after["measurement"].num_denominator_rows
        )
        s.rollback()
