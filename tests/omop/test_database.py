"""Migrations, seed and schema check on both backends."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from omop import cdm
from omop.database import alembic_config, check_schema, upgrade
from omop.engine import make_engine
from omop.errors import SchemaConflictError
from omop.vocab.registry import our_concept_id


def test_schema_conforms_to_spec(engine: Engine) -> None:
    report = check_schema(engine, include_extensions=True)
    assert report.differences == {}
    assert report.conforming == 42


def test_alembic_reports_no_drift(engine: Engine) -> None:
    with engine.connect() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.check(config)  # raises on any drift


def test_upgrade_is_idempotent_and_seeds_once(fresh_url: str) -> None:
    eng = make_engine(fresh_url)
    first = upgrade(eng)
    again = upgrade(eng)
    assert first.concepts > 2500
    assert again.concepts == again.vocabularies == again.pending_maps == 0
    with Session(eng) as session:
        assert session.scalar(select(func.count()).select_from(cdm.Concept)) == (
            first.concepts
        )
    eng.dispose()


def test_check_reports_a_changed_column(fresh_url: str) -> None:
    eng = make_engine(fresh_url)
    upgrade(eng)
    with eng.begin() as connection:
        connection.execute(text("DROP TABLE cohort_definition"))
        connection.execute(text("ALTER TABLE note_nlp ADD COLUMN extra_col INTEGER"))
    report = check_schema(eng)
    assert report.differences["cohort_definition"] == ["table missing"]
    assert report.differences["note_nlp"] == ["column extra_col not in spec"]
    assert report.conforming == 39
    eng.dispose()


def test_foreign_schema_is_refused_and_kept(fresh_url: str) -> None:
    eng = make_engine(fresh_url)
    with eng.begin() as connection:
        connection.execute(text("CREATE TABLE patients (id INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO patients VALUES (1)"))
    with pytest.raises(SchemaConflictError, match="did not create"):
        upgrade(eng)
    with eng.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM patients")).scalar() == 1
    eng.dispose()


def test_seed_has_verified_and_our_concepts(session: Session) -> None:
    def name(concept_id: int) -> str | None:
        return session.scalar(
            select(cdm.Concept.concept_name).where(cdm.Concept.concept_id == concept_id)
        )

    assert name(8507) == "MALE"
    assert name(8532) == "FEMALE"
    assert name(32940) == "Cancer Radiotherapy"
    assert name(1147127) == "condition_occurrence.condition_occurrence_id"
    assert name(our_concept_id("CTCAE v5.0", "10001760")) == "Alopecia"
    assert name(our_concept_id("TG263", "Heart")) is not None
    assert name(our_concept_id("QLQ-C30", "PF2")) is not None
    # an unverified standard concept (gray) is never invented
    gray = session.scalar(
        select(func.count())
        .select_from(cdm.Concept)
        .where(cdm.Concept.vocabulary_id == "UCUM", cdm.Concept.concept_code == "Gy")
    )
    assert gray == 0
    # our concepts are non-standard
    heart = session.get(cdm.Concept, our_concept_id("TG263", "Heart"))
    assert heart is not None
    assert heart.standard_concept is None


def test_vocabulary_cycle_foreign_keys_are_enforced_at_commit(engine: Engine) -> None:
    with pytest.raises(Exception, match=r"(?i)foreign key"), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO domain (domain_id, domain_name, domain_concept_id) "
                "VALUES ('Bogus', 'Bogus', 999999999)"
            )
        )
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM domain WHERE domain_id = 'Bogus'")
        ).scalar()
    assert count == 0
