"""DQD table-level and conformance check types: satisfied, then violated by one mutation.

The database holds one RT patient built through the production writers
(:func:`tests.omop.quality.dqd_world.build_world`) on each backend. Each test first
asserts that the check passes on it, then applies one mutation through SQLAlchemy
(rows or schema no writer produces: that is the point) and asserts the number of
violating rows. Each test rolls back.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from omop import cdm
from tests.etl.ingest_db import Db
from tests.omop.quality.dqd_world import (
    build_world,
    check_named,
    condition_of,
    count_rows,
    metric_of,
    passes,
    run_ok,
)
from tests.omop.quality.rt_world import course_of


@pytest.fixture(scope="module")
def world(db: Db, tmp_path_factory: pytest.TempPathFactory) -> int:
    return build_world(db, tmp_path_factory.mktemp("dqd-patient"))


# ---- table level -----------------------------------------------------------------


def test_observation_period_overlap(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(s, "measureObservationPeriodOverlap", "observation_period")
        periods = passes(s, check).num_denominator_rows
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
        result = run_ok(s, check)
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
        check = check_named(s, "measureConditionEraCompleteness", "condition_era")
        persons = count_rows(
            s,
            cdm.Person,
            cdm.Person.person_id.in_(select(cdm.ConditionOccurrence.person_id)),
        )
        result = run_ok(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (
            persons,
            persons,
        )
        condition = condition_of(s, world)
        s.execute(
            insert(cdm.ConditionEra).values(
                person_id=world,
                condition_concept_id=condition.condition_concept_id,
                condition_era_start_date=condition.condition_start_date,
                condition_era_end_date=condition.condition_start_date,
                condition_occurrence_count=1,
            )
        )
        assert run_ok(s, check).num_violated_rows == persons - 1
        s.rollback()


# ---- field level: conformance ------------------------------------------------------


def test_cdm_field(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(s, "cdmField", "person", "ethnicity_source_value")
        passes(s, check)
        # transactional DDL on both backends (SQLite: the engine opens BEGIN)
        s.execute(text("ALTER TABLE person DROP COLUMN ethnicity_source_value"))
        result = run_ok(s, check)
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
        check = check_named(s, "isRequired", "episode", "episode_start_date")
        assert passes(s, check).num_denominator_rows == 2  # course + disease
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
        result = run_ok(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (2, 2)
        assert result.failed
        s.rollback()


def test_is_primary_key(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(s, "isPrimaryKey", "episode", "episode_id")
        assert passes(s, check).num_denominator_rows == 2
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
        result = run_ok(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (2, 2)
        s.rollback()


def test_is_foreign_key(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(s, "isForeignKey", "measurement", "unit_concept_id")
        passes(s, check)
        if s.get_bind().dialect.name == "sqlite":  # checked at commit, never reached
            s.execute(text("PRAGMA defer_foreign_keys = ON"))
        else:  # transactional DDL: the rollback restores it
            s.execute(
                text(
                    "ALTER TABLE measurement "
                    "DROP CONSTRAINT fk_measurement_unit_concept_id_concept"
                )
            )
        metric = metric_of(s, world, "Mean[Gy]")
        s.execute(
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == metric.measurement_id)
            .values(unit_concept_id=1_999_999_999)  # no such concept
        )
        result = run_ok(s, check)
        assert result.num_violated_rows == 1 and result.failed
        s.rollback()


def test_fk_domain(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(s, "fkDomain", "measurement", "unit_concept_id")
        passes(s, check)
        metric = metric_of(s, world, "D2%[Gy]")
        s.execute(  # MALE is a Gender concept, not a Unit
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == metric.measurement_id)
            .values(unit_concept_id=8507)
        )
        assert run_ok(s, check).num_violated_rows == 1
        s.rollback()


def test_fk_class(db: Db, world: int) -> None:
    # no writer fills DRUG_ERA (no drug data): one era of a non-Ingredient concept
    with db.factory() as s:
        check = check_named(s, "fkClass", "drug_era", "drug_concept_id")
        assert passes(s, check).num_denominator_rows == 0
        day = course_of(s, world).episode_start_date
        s.execute(
            insert(cdm.DrugEra).values(
                person_id=world,
                drug_concept_id=8554,  # percent: class Unit
                drug_era_start_date=day,
                drug_era_end_date=day,
            )
        )
        result = run_ok(s, check)
        assert (result.num_violated_rows, result.num_denominator_rows) == (1, 1)
        s.rollback()


def test_is_standard_valid_concept(db: Db, world: int) -> None:
    with db.factory() as s:
        check = check_named(
            s, "isStandardValidConcept", "measurement", "unit_concept_id"
        )
        passes(s, check)
        metric = metric_of(s, world, "Mean[Gy]")
        s.execute(  # our own concepts are non-standard
            update(cdm.Measurement)
            .where(cdm.Measurement.measurement_id == metric.measurement_id)
            .values(unit_concept_id=metric.measurement_source_concept_id)
        )
        assert run_ok(s, check).num_violated_rows == 1
        s.rollback()


def test_writers_use_the_verified_standard_concepts(db: Db, world: int) -> None:
    # the ids of omop/vocab/data/standard_concepts.csv, written by the production
    # writers, satisfy fkDomain and isStandardValidConcept where DQD checks them
    with db.factory() as s:
        course = course_of(s, world)
        disease = s.get(cdm.Episode, course.episode_parent_id)
        assert disease is not None
        assert (
            course.episode_object_concept_id,
            disease.episode_object_concept_id,
        ) == (
            4029715,
            443392,
        )
        procedures = set(
            s.scalars(
                select(cdm.ProcedureOccurrence.procedure_concept_id).where(
                    cdm.ProcedureOccurrence.person_id == world
                )
            )
        )
        visits = set(
            s.scalars(
                select(cdm.VisitOccurrence.visit_concept_id).where(
                    cdm.VisitOccurrence.person_id == world
                )
            )
        )
        assert (procedures, visits) == ({4029715}, {9202})
        modalities = dict(
            s.execute(
                select(
                    cdm.ImageOccurrence.image_occurrence_id,
                    cdm.ImageOccurrence.modality_concept_id,
                ).where(cdm.ImageOccurrence.person_id == world)
            ).all()
        )
        # one CT series (4300757); RTSTRUCT, RTPLAN, RTDOSE have no standard concept
        assert sorted(modalities.values()) == [0, 0, 0, 4300757]
        for name, table, field in (
            ("fkDomain", "procedure_occurrence", "procedure_concept_id"),
            ("fkDomain", "visit_occurrence", "visit_concept_id"),
            ("isStandardValidConcept", "procedure_occurrence", "procedure_concept_id"),
            ("isStandardValidConcept", "visit_occurrence", "visit_concept_id"),
            (
                "standardConceptRecordCompleteness",
                "visit_occurrence",
                "visit_concept_id",
            ),
        ):
            result = passes(s, check_named(s, name, table, field))
            assert result.num_denominator_rows > 0, (name, table, field)
