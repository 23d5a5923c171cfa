"""DQD completeness, plausibility and concept-level check types and our RT checks: satisfied, then violated by one mutation.

The database holds one RT patient built through the production writers
(:func:`tests.omop.quality.dqd_world.build_world`) on each backend. Each test first
asserts that the check passes on it, then applies one mutation through SQLAlchemy
(rows or schema no writer produces: that is the point) and asserts the number of
violating rows. Each test rolls back.
"""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from omop import cdm
from omop.quality import all_checks
from tests.etl.ingest_db import Db
from tests.omop.quality.dqd_world import (
    build_world,
    check_named,
    condition_of,
    count_rows,
    grade_of,
    metric_of,
    passes,
    run_ok,
)
from tests.omop.quality.rt_world import course_of


@pytest.fixture(scope="module")
def world(db: Db, tmp_path_factory: pytest.TempPathFactory) -> int:
    return build_world(db, tmp_path_factory.mktemp("dqd-patient"))


# ---- field level: completeness -----------------------------------------------------


def test_measure_value_completeness(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(
            s, "measureValueCompleteness", "measurement", "measurement_date"
        )
        rows = passes(s, check).num_denominator_rows
        assert rows == count_rows(s, cdm.Measurement)
        check = check_named(
            s, "measureValueCompleteness", "measurement", "measurement_source_value"
        )
        assert passes(s, check).num_denominator_rows == rows
        metric = metric_of(s, world, "Mean[Gy]")
        s.execute(
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == metric.measurement_id)
            .values(measurement_source_value=None)
        )
        assert run_ok(s, check).num_violated_rows == 1
        s.rollback()


def test_source_concept_record_completeness(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(
            s,
            "sourceConceptRecordCompleteness",
            "measurement",
            "measurement_source_concept_id",
        )
        passes(s, check)
        metric = metric_of(s, world, "Max[Gy]")
        s.execute(
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == metric.measurement_id)
            .values(measurement_source_concept_id=0)
        )
        assert run_ok(s, check).num_violated_rows == 1
        s.rollback()


def test_source_value_completeness(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(
            s, "sourceValueCompleteness", "person", "gender_source_value"
        )
        values = passes(s, check).num_denominator_rows
        assert values >= 1
        s.execute(  # the person's gender source value no longer mapped
            update(cdm.Person)
            .where(cdm.Person.person_id == world)
            .values(gender_concept_id=0)
        )
        assert run_ok(s, check).num_violated_rows == 1
        s.rollback()


# ---- field level: plausibility -----------------------------------------------------


def test_plausible_temporal_after(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(s, "plausibleTemporalAfter", "episode", "episode_end_date")
        passes(s, check)
        course = course_of(s, world)
        s.execute(  # the course ends the day before it starts
            update(cdm.Episode)
            .where(cdm.Episode.episode_id == course.episode_id)
            .values(
                episode_end_date=course.episode_start_date - datetime.timedelta(days=1)
            )
        )
        assert run_ok(s, check).num_violated_rows == 1
        s.rollback()


def test_plausible_start_before_end(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(
            s, "plausibleStartBeforeEnd", "episode", "episode_start_date"
        )
        passes(s, check)
        course = course_of(s, world)
        assert course.episode_end_date is not None
        s.execute(
            update(cdm.Episode)
            .where(cdm.Episode.episode_id == course.episode_id)
            .values(
                episode_start_date=course.episode_end_date + datetime.timedelta(days=1)
            )
        )
        assert run_ok(s, check).num_violated_rows == 1
        s.rollback()


def test_plausible_after_birth(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(
            s, "plausibleAfterBirth", "condition_occurrence", "condition_start_date"
        )
        passes(s, check)
        condition = condition_of(s, world)
        s.execute(  # born the year after the adverse event
            update(cdm.Person)
            .where(cdm.Person.person_id == world)
            .values(
                year_of_birth=condition.condition_start_date.year + 1,
                month_of_birth=None,
                day_of_birth=None,
                birth_datetime=None,
            )
        )
        assert run_ok(s, check).num_violated_rows == 1
        s.rollback()


def test_unknown_year_of_birth_is_no_error(db: Db, world: int) -> None:
    # a person met first in DICOM has year_of_birth 0 (de-identification empties
    # the birth date) until enrolment records it: unknown, never "born in year 0"
    with db.factory() as s:
        check = check_named(
            s, "plausibleAfterBirth", "condition_occurrence", "condition_start_date"
        )
        s.execute(
            update(cdm.Person)
            .where(cdm.Person.person_id == world)
            .values(year_of_birth=0, birth_datetime=None)
        )
        assert run_ok(s, check).num_violated_rows == 0
        s.rollback()


def test_plausible_during_life(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(
            s, "plausibleDuringLife", "condition_occurrence", "condition_start_date"
        )
        assert passes(s, check).num_denominator_rows == 1  # the person died
        condition = condition_of(s, world)
        s.execute(  # death recorded 61 days before the adverse event
            update(cdm.Death)
            .where(cdm.Death.person_id == world)
            .values(
                death_date=condition.condition_start_date - datetime.timedelta(days=61)
            )
        )
        assert run_ok(s, check).num_violated_rows == 1
        s.rollback()


def test_within_visit_dates(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(s, "withinVisitDates", "observation", "observation_date")
        visits = passes(s, check).num_denominator_rows
        grade = grade_of(s, world)
        visit = s.get(cdm.VisitOccurrence, grade.visit_occurrence_id)
        assert visit is not None and visits > 0
        s.execute(  # the grade dated 8 days after its visit ended
            update(cdm.Observation)
            .where(cdm.Observation.observation_id == grade.observation_id)
            .values(observation_date=visit.visit_end_date + datetime.timedelta(days=8))
        )
        assert run_ok(s, check).num_violated_rows == 1
        s.rollback()


# ---- concept level ---------------------------------------------------------------


def _add_concepts(s: Session, *ids: int) -> None:
    """Athena concepts the seed lacks, shaped like the seeded percent (8554)."""
    model = s.get(cdm.Concept, 8554)
    assert model is not None
    for cid in ids:
        if s.get(cdm.Concept, cid) is None:
            s.execute(
                insert(cdm.Concept).values(
                    concept_id=cid,
                    concept_name=f"concept {cid}",
                    domain_id="Measurement",
                    vocabulary_id=model.vocabulary_id,
                    concept_class_id=model.concept_class_id,
                    standard_concept="S",
                    concept_code=str(cid),
                    valid_start_date=model.valid_start_date,
                    valid_end_date=model.valid_end_date,
                )
            )


def test_plausible_gender_use_descendants(db: Db, world: int) -> None:
    with db.factory() as s:
        gender = s.scalar(
            select(cdm.Person.gender_concept_id).where(cdm.Person.person_id == world)
        )
        check = next(
            c
            for c in all_checks(s.get_bind().dialect.name)
            if c.name == "plausibleGenderUseDescendants"
            and c.table == "condition_occurrence"
            and c.params["gender"] != gender
        )
        assert passes(s, check).num_denominator_rows == 0
        ancestor = int(check.params["c0"])
        descendant = 1_999_999_001
        _add_concepts(s, ancestor, descendant)
        s.execute(
            insert(cdm.ConceptAncestor).values(
                ancestor_concept_id=ancestor,
                descendant_concept_id=descendant,
                min_levels_of_separation=1,
                max_levels_of_separation=1,
            )
        )
        s.execute(  # the adverse event recoded as a descendant of a one-sex concept
            update(cdm.ConditionOccurrence)
            .where(cdm.ConditionOccurrence.person_id == world)
            .values(condition_concept_id=descendant)
        )
        result = run_ok(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (1, 1)
        s.rollback()


# ---- our own checks not covered in test_rt_course_checks.py --------------------------


def test_rt_course_has_prescription(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(s, "rtCourseHasPrescription", "episode")
        assert passes(s, check).num_denominator_rows == 1
        s.execute(  # the prescription rows detached from the course
            update(cdm.Measurement)
            .where(
                cdm.Measurement.measurement_event_id == course_of(s, world).episode_id
            )
            .values(measurement_event_id=None, meas_event_field_concept_id=None)
        )
        result = run_ok(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (1, 1)
        s.rollback()


def test_rt_dvh_monotone(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(s, "rtDvhMonotone", "measurement")
        pairs = passes(s, check).num_denominator_rows
        assert pairs > 0
        top = metric_of(s, world, "Max[Gy]")
        s.execute(  # Max below D2 of the same structure: only the (D2, Max) pair
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == top.measurement_id)
            .values(value_as_number=-1.0)
        )
        result = run_ok(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (1, pairs)
        s.rollback()
