"""DQD check types on a database that satisfies them and after one mutation that doesn't.

The database holds one RT patient built through the production writers (DICOM
import, consent, a CTCAE grading and a QLQ-C30 answer set, death) on each backend.
Every test first asserts that the check passes on it, then applies one mutation
through SQLAlchemy (rows no writer produces: that is the point) and asserts the
number of violating rows the mutation creates. Each test rolls back.
"""

from __future__ import annotations

import datetime
from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cohort.vital import record_death
from instruments.fhir import PSEUDONYM_SYSTEM, PromResponse, SubjectIdentifier
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.store import Assessment, store_prom, store_toxicity
from omop import cdm
from omop.quality import Check, all_checks
from omop.quality.run import CheckResult, run_check
from omop.vocab.registry import our_concept_id
from tests.etl.ingest_db import Db
from tests.omop.quality.rt_world import course_of, load_patient

PATIENT = "DQD-1"


@pytest.fixture(scope="module")
def world(db: Db, tmp_path_factory: pytest.TempPathFactory) -> int:
    pid = load_patient(db, tmp_path_factory.mktemp("dqd-patient"), PATIENT, 417)
    with db.factory.begin() as s:
        end = course_of(s, pid).episode_end_date
        assert end is not None
        subject = SubjectIdentifier(PSEUDONYM_SYSTEM, PATIENT)
        day = end + datetime.timedelta(days=91)
        grading = ToxicityGrading(
            "ae-1", subject, "5.0", "Dry mouth", 2, day, timepoint="m3"
        )
        store_toxicity(s, Assessment(pid, "m3"), grading)
        answers: dict[int, int | None] = dict.fromkeys(range(1, 31), 2)
        answers[29] = answers[30] = 5
        when = datetime.datetime.combine(day, datetime.time(10), tzinfo=UTC)
        store_prom(
            s,
            Assessment(pid, "m3"),
            PromResponse("qr-1", "QLQ-C30", subject, when, answers),
        )
        record_death(s, pid, day + datetime.timedelta(days=400))
    return pid


def _check(s: Session, name: str, table: str, field: str | None = None) -> Check:
    found = [
        c
        for c in all_checks(s.get_bind().dialect.name)
        if (c.name, c.table) == (name, table) and (field is None or c.field == field)
    ]
    assert len(found) == 1, (name, table, field, len(found))
    assert not found[0].not_applicable, found[0].not_applicable
    return found[0]


def _run(s: Session, check: Check) -> CheckResult:
    result = run_check(s, check)
    assert result.error is None, result.error
    return result


def _count(s: Session, table: type[object], *where: object) -> int:
    return int(s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def _passes(s: Session, check: Check) -> CheckResult:
    result = _run(s, check)
    assert result.num_violated_rows == 0 and not result.failed, result
    return result


def _condition(s: Session, pid: int) -> cdm.ConditionOccurrence:
    return s.scalars(
        select(cdm.ConditionOccurrence).where(cdm.ConditionOccurrence.person_id == pid)
    ).one()


def _grade(s: Session, pid: int) -> cdm.Observation:
    condition = _condition(s, pid).condition_occurrence_id
    return s.scalars(
        select(cdm.Observation).where(
            cdm.Observation.person_id == pid,
            cdm.Observation.observation_event_id == condition,
            cdm.Observation.obs_event_field_concept_id == 1147127,
        )
    ).one()


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


# ---- table level -----------------------------------------------------------------


def test_observation_period_overlap(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "measureObservationPeriodOverlap", "observation_period")
        periods = _passes(s, check).num_denominator_rows
        period = s.scalars(
            select(cdm.ObservationPeriod).where(
                cdm.ObservationPeriod.person_id == world
            )
        ).one()
        s.execute(  # a second period inside the first
            insert(cdm.ObservationPeriod).values(
                person_id=world,
                observation_period_start_date=period.observation_period_start_date,
                observation_period_end_date=period.observation_period_start_date,
                period_type_concept_id=period.period_type_concept_id,
            )
        )
        result = _run(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (
            2,
            periods + 1,
        )
        assert result.failed
        s.rollback()


def test_condition_era_completeness(db: Db, world: int) -> None:
    # the platform builds no eras: a person with a condition violates it (a known
    # failure); an era for that person satisfies it
    with db.factory() as s:
        check = _check(s, "measureConditionEraCompleteness", "condition_era")
        persons = _count(
            s,
            cdm.Person,
            cdm.Person.person_id.in_(select(cdm.ConditionOccurrence.person_id)),
        )
        result = _run(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (
            persons,
            persons,
        )
        condition = _condition(s, world)
        s.execute(
            insert(cdm.ConditionEra).values(
                person_id=world,
                condition_concept_id=condition.condition_concept_id,
                condition_era_start_date=condition.condition_start_date,
                condition_era_end_date=condition.condition_start_date,
                condition_occurrence_count=1,
            )
        )
        assert _run(s, check).num_violated_rows == persons - 1
        s.rollback()


# ---- field level: conformance ------------------------------------------------------


def test_cdm_field(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "cdmField", "person", "ethnicity_source_value")
        _passes(s, check)
        # transactional DDL on both backends (SQLite: the engine opens BEGIN)
        s.execute(text("ALTER TABLE person DROP COLUMN ethnicity_source_value"))
        result = _run(s, check)
        assert result.num_violated_rows == 1 and result.failed
        s.rollback()


def _sqlite_refuses(s: Session, statement: Any, reason: str) -> None:
    """SQLite cannot drop the constraint that refuses the violation: skip."""
    with pytest.raises(IntegrityError):
        s.execute(statement)
    s.rollback()
    pytest.skip(f"sqlite: {reason}; SQLite cannot drop it, so the check cannot fail")


def test_is_required(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "isRequired", "episode", "episode_start_date")
        assert _passes(s, check).num_denominator_rows == 2  # course + disease
        missing = (
            update(cdm.Episode)
            .where(cdm.Episode.person_id == world)
            .values(episode_start_date=None)
        )
        if s.get_bind().dialect.name == "sqlite":
            _sqlite_refuses(s, missing, "NOT NULL refuses a missing required field")
        s.execute(  # transactional DDL: the rollback restores it
            text("ALTER TABLE episode ALTER COLUMN episode_start_date DROP NOT NULL")
        )
        s.execute(missing)
        result = _run(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (2, 2)
        assert result.failed
        s.rollback()


def test_is_primary_key(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "isPrimaryKey", "episode", "episode_id")
        assert _passes(s, check).num_denominator_rows == 2
        course = course_of(s, world)
        duplicate = (
            update(cdm.Episode)
            .where(cdm.Episode.episode_id == course.episode_id)
            .values(episode_id=course.episode_parent_id)
        )
        if s.get_bind().dialect.name == "sqlite":
            _sqlite_refuses(s, duplicate, "the PRIMARY KEY refuses a duplicate id")
        s.execute(text("ALTER TABLE episode DROP CONSTRAINT pk_episode CASCADE"))
        s.execute(duplicate)
        result = _run(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (2, 2)
        s.rollback()


def test_is_foreign_key(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "isForeignKey", "measurement", "unit_concept_id")
        _passes(s, check)
        if s.get_bind().dialect.name == "sqlite":  # checked at commit, never reached
            s.execute(text("PRAGMA defer_foreign_keys = ON"))
        else:  # transactional DDL: the rollback restores it
            s.execute(
                text(
                    "ALTER TABLE measurement "
                    "DROP CONSTRAINT fk_measurement_unit_concept_id_concept"
                )
            )
        metric = _metric(s, world, "Mean[Gy]")
        s.execute(
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == metric.measurement_id)
            .values(unit_concept_id=1_999_999_999)  # no such concept
        )
        result = _run(s, check)
        assert result.num_violated_rows == 1 and result.failed
        s.rollback()


def test_fk_domain(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "fkDomain", "measurement", "unit_concept_id")
        _passes(s, check)
        metric = _metric(s, world, "D2%[Gy]")
        s.execute(  # MALE is a Gender concept, not a Unit
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == metric.measurement_id)
            .values(unit_concept_id=8507)
        )
        assert _run(s, check).num_violated_rows == 1
        s.rollback()


def test_fk_class(db: Db, world: int) -> None:
    # no writer fills DRUG_ERA (no drug data): one era of a non-Ingredient concept
    with db.factory() as s:
        check = _check(s, "fkClass", "drug_era", "drug_concept_id")
        assert _passes(s, check).num_denominator_rows == 0
        day = course_of(s, world).episode_start_date
        s.execute(
            insert(cdm.DrugEra).values(
                person_id=world,
                drug_concept_id=8554,  # percent: class Unit
                drug_era_start_date=day,
                drug_era_end_date=day,
            )
        )
        result = _run(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (1, 1)
        s.rollback()


def test_is_standard_valid_concept(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "isStandardValidConcept", "measurement", "unit_concept_id")
        _passes(s, check)
        metric = _metric(s, world, "Mean[Gy]")
        s.execute(  # our own concepts are non-standard
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == metric.measurement_id)
            .values(unit_concept_id=metric.measurement_source_concept_id)
        )
        assert _run(s, check).num_violated_rows == 1
        s.rollback()


# ---- field level: completeness -----------------------------------------------------


def test_measure_value_completeness(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "measureValueCompleteness", "measurement", "measurement_date")
        rows = _passes(s, check).num_denominator_rows
        assert rows == _count(s, cdm.Measurement)
        check = _check(
            s, "measureValueCompleteness", "measurement", "measurement_source_value"
        )
        assert _passes(s, check).num_denominator_rows == rows
        metric = _metric(s, world, "Mean[Gy]")
        s.execute(
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == metric.measurement_id)
            .values(measurement_source_value=None)
        )
        assert _run(s, check).num_violated_rows == 1
        s.rollback()


def test_source_concept_record_completeness(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(
            s,
            "sourceConceptRecordCompleteness",
            "measurement",
            "measurement_source_concept_id",
        )
        _passes(s, check)
        metric = _metric(s, world, "Max[Gy]")
        s.execute(
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == metric.measurement_id)
            .values(measurement_source_concept_id=0)
        )
        assert _run(s, check).num_violated_rows == 1
        s.rollback()


def test_source_value_completeness(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "sourceValueCompleteness", "person", "gender_source_value")
        values = _passes(s, check).num_denominator_rows
        assert values >= 1
        s.execute(  # the person's gender source value no longer mapped
            update(cdm.Person)
            .where(cdm.Person.person_id == world)
            .values(gender_concept_id=0)
        )
        assert _run(s, check).num_violated_rows == 1
        s.rollback()


# ---- field level: plausibility -----------------------------------------------------


def test_plausible_temporal_after(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "plausibleTemporalAfter", "episode", "episode_end_date")
        _passes(s, check)
        course = course_of(s, world)
        s.execute(  # the course ends the day before it starts
            update(cdm.Episode)
            .where(cdm.Episode.episode_id == course.episode_id)
            .values(
                episode_end_date=course.episode_start_date - datetime.timedelta(days=1)
            )
        )
        assert _run(s, check).num_violated_rows == 1
        s.rollback()


def test_plausible_start_before_end(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "plausibleStartBeforeEnd", "episode", "episode_start_date")
        _passes(s, check)
        course = course_of(s, world)
        assert course.episode_end_date is not None
        s.execute(
            update(cdm.Episode)
            .where(cdm.Episode.episode_id == course.episode_id)
            .values(
                episode_start_date=course.episode_end_date + datetime.timedelta(days=1)
            )
        )
        assert _run(s, check).num_violated_rows == 1
        s.rollback()


def test_plausible_after_birth(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(
            s, "plausibleAfterBirth", "condition_occurrence", "condition_start_date"
        )
        _passes(s, check)
        condition = _condition(s, world)
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
        assert _run(s, check).num_violated_rows == 1
        s.rollback()


def test_unknown_year_of_birth_is_no_error(db: Db, world: int) -> None:
    # a person met first in DICOM has year_of_birth 0 (de-identification empties
    # the birth date) until enrolment records it: unknown, never "born in year 0"
    with db.factory() as s:
        check = _check(
            s, "plausibleAfterBirth", "condition_occurrence", "condition_start_date"
        )
        s.execute(
            update(cdm.Person)
            .where(cdm.Person.person_id == world)
            .values(year_of_birth=0, birth_datetime=None)
        )
        assert _run(s, check).num_violated_rows == 0
        s.rollback()


def test_plausible_during_life(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(
            s, "plausibleDuringLife", "condition_occurrence", "condition_start_date"
        )
        assert _passes(s, check).num_denominator_rows == 1  # the person died
        condition = _condition(s, world)
        s.execute(  # death recorded 61 days before the adverse event
            update(cdm.Death)
            .where(cdm.Death.person_id == world)
            .values(
                death_date=condition.condition_start_date - datetime.timedelta(days=61)
            )
        )
        assert _run(s, check).num_violated_rows == 1
        s.rollback()


def test_within_visit_dates(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "withinVisitDates", "observation", "observation_date")
        visits = _passes(s, check).num_denominator_rows
        grade = _grade(s, world)
        visit = s.get(cdm.VisitOccurrence, grade.visit_occurrence_id)
        assert visit is not None and visits > 0
        s.execute(  # the grade dated 8 days after its visit ended
            update(cdm.Observation)
            .where(cdm.Observation.observation_id == grade.observation_id)
            .values(observation_date=visit.visit_end_date + datetime.timedelta(days=8))
        )
        assert _run(s, check).num_violated_rows == 1
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
        assert _passes(s, check).num_denominator_rows == 0
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
        result = _run(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (1, 1)
        s.rollback()


# ---- our own checks not covered in test_rt_course_checks.py --------------------------


def test_rt_course_has_prescription(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "rtCourseHasPrescription", "episode")
        assert _passes(s, check).num_denominator_rows == 1
        s.execute(  # the prescription rows detached from the course
            update(cdm.Measurement)
            .where(
                cdm.Measurement.measurement_event_id == course_of(s, world).episode_id
            )
            .values(measurement_event_id=None, meas_event_field_concept_id=None)
        )
        result = _run(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (1, 1)
        s.rollback()


def test_rt_dvh_monotone(db: Db, world: int) -> None:
    with db.factory() as s:
        check = _check(s, "rtDvhMonotone", "measurement")
        pairs = _passes(s, check).num_denominator_rows
        assert pairs > 0
        top = _metric(s, world, "Max[Gy]")
        s.execute(  # Max below D2 of the same structure: only the (D2, Max) pair
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == top.measurement_id)
            .values(value_as_number=-1.0)
        )
        result = _run(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (1, pairs)
        s.rollback()
