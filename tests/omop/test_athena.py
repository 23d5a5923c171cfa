"""Loading an Athena download (a small fixture in Athena's format) and re-resolving."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omop import cdm
from omop.database import upgrade
from omop.engine import make_engine, session_factory
from omop.errors import AthenaLoadError
from omop.vocab.athena import load_athena
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id

# Ids below are fixture values in Athena's format, not claims about real Athena ids.
GY_ID, HEART_SNOMED_ID, LEFT_ID, LUNG_ID, MEAS_FIELD_ID = (
    9100001,
    9100002,
    9100003,
    9100004,
    9100005,
)


def _write(
    folder: Path, name: str, header: list[str], rows: list[list[object]]
) -> None:
    lines = ["\t".join(header)] + ["\t".join(str(v) for v in row) for row in rows]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_athena(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    concept_header = [
        "concept_id",
        "concept_name",
        "domain_id",
        "vocabulary_id",
        "concept_class_id",
        "standard_concept",
        "concept_code",
        "valid_start_date",
        "valid_end_date",
        "invalid_reason",
    ]
    _write(
        folder,
        "CONCEPT.csv",
        concept_header,
        [
            [
                GY_ID,
                "gray",
                "Unit",
                "UCUM",
                "Unit",
                "S",
                "Gy",
                "19700101",
                "20991231",
                "",
            ],
            [
                HEART_SNOMED_ID,
                "Heart structure",
                "Spec Anatomic Site",
                "SNOMED",
                "Body Structure",
                "S",
                "80891009",
                "19700101",
                "20991231",
                "",
            ],
            [
                LEFT_ID,
                "Left",
                "Qualifier",
                "SNOMED",
                "Qualifier Value",
                "S",
                "7771000",
                "19700101",
                "20991231",
                "",
            ],
            [
                LUNG_ID,
                "Lung structure",
                "Spec Anatomic Site",
                "SNOMED",
                "Body Structure",
                "S",
                "39607008",
                "19700101",
                "20991231",
                "",
            ],
            [
                MEAS_FIELD_ID,
                "measurement.measurement_id",
                "Metadata",
                "CDM",
                "Field",
                "S",
                "CDM9100005",
                "19700101",
                "20991231",
                "",
            ],
            [
                8507,
                "MALE",
                "Gender",
                "Gender",
                "Gender",
                "S",
                "M",
                "19700101",
                "20991231",
                "",
            ],
        ],
    )
    _write(
        folder,
        "VOCABULARY.csv",
        [
            "vocabulary_id",
            "vocabulary_name",
            "vocabulary_reference",
            "vocabulary_version",
            "vocabulary_concept_id",
        ],
        [
            ["UCUM", "Unified Code for Units of Measure", "ucum", "v1", 0],
            ["SNOMED", "SNOMED CT", "snomed", "2025", 0],
        ],
    )
    _write(
        folder,
        "DOMAIN.csv",
        ["domain_id", "domain_name", "domain_concept_id"],
        [["Qualifier", "Qualifier", 0]],
    )
    _write(
        folder,
        "CONCEPT_CLASS.csv",
        ["concept_class_id", "concept_class_name", "concept_class_concept_id"],
        [
            ["Body Structure", "Body Structure", 0],
            ["Qualifier Value", "Qualifier Value", 0],
        ],
    )
    _write(
        folder,
        "RELATIONSHIP.csv",
        [
            "relationship_id",
            "relationship_name",
            "is_hierarchical",
            "defines_ancestry",
            "reverse_relationship_id",
            "relationship_concept_id",
        ],
        [
            [
                "Maps to",
                "Non-standard to Standard map (OMOP)",
                "0",
                "0",
                "Mapped from",
                0,
            ],
            [
                "Mapped from",
                "Standard to Non-standard map (OMOP)",
                "0",
                "0",
                "Maps to",
                0,
            ],
            ["Maps to value", "Maps to value", "0", "0", "Value mapped from", 0],
            ["Value mapped from", "Value mapped from", "0", "0", "Maps to value", 0],
        ],
    )
    return folder


def test_load_resolves_zeros_and_field_concepts(fresh_url: str, tmp_path: Path) -> None:
    engine = make_engine(fresh_url)
    upgrade(engine)
    factory = session_factory(engine)
    heart = our_concept_id("TG263", "Heart")
    with factory() as session:
        ours = field_concept_id(session, "measurement.measurement_id")
        assert ours >= 2_050_000_000
        person = cdm.Person(
            gender_concept_id=8507,
            year_of_birth=1950,
            race_concept_id=0,
            ethnicity_concept_id=0,
            person_source_value="T-ATHENA",
        )
        session.add(person)
        session.flush()
        parent = cdm.Measurement(
            person_id=person.person_id,
            measurement_concept_id=0,
            measurement_date=datetime.date(2024, 1, 1),
            measurement_type_concept_id=32817,
            unit_concept_id=0,
            unit_source_value="Gy",
            measurement_source_concept_id=heart,
            meas_event_field_concept_id=ours,
            measurement_event_id=1,
        )
        session.add(parent)
        session.commit()
        measurement_id = parent.measurement_id
    with factory.begin() as session:
        report = load_athena(session, make_athena(tmp_path / "athena"))
    assert report.rows["CONCEPT.csv"] == 6
    with factory() as session:
        row = session.get(cdm.Measurement, measurement_id)
        assert row is not None
        assert row.unit_concept_id == GY_ID
        assert row.measurement_concept_id == HEART_SNOMED_ID  # via Maps to
        assert row.meas_event_field_concept_id == MEAS_FIELD_ID
        assert field_concept_id(session, "measurement.measurement_id") == MEAS_FIELD_ID
        lung_l = our_concept_id("TG263", "Lung_L")
        maps = set(
            session.execute(
                select(
                    cdm.ConceptRelationship.relationship_id,
                    cdm.ConceptRelationship.concept_id_2,
                ).where(cdm.ConceptRelationship.concept_id_1 == lung_l)
            ).all()
        )
        assert maps == {("Maps to", LUNG_ID), ("Maps to value", LEFT_ID)}
    # a second load changes nothing
    with factory.begin() as session:
        again = load_athena(session, tmp_path / "athena")
    assert again.maps_created == 0
    assert again.zeros_resolved == 0
    engine.dispose()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda t: t[: t.rindex("\n") - 5], r"CONCEPT\.csv line 7: truncated line"),
        (
            lambda t: t.replace("\tGy\t", "\tGy\textra\t"),
            r"CONCEPT\.csv line 2: 11 fields",
        ),
        (
            lambda t: t.replace("19700101", "1970-01-01", 1),
            r"CONCEPT\.csv line 2: field valid_start_date",
        ),
    ],
)
def test_corrupt_file_rolls_back_and_names_file_and_line(
    session: Session, tmp_path: Path, damage, message: str
) -> None:
    folder = make_athena(tmp_path / "athena")
    concept = folder / "CONCEPT.csv"
    concept.write_text(damage(concept.read_text()), encoding="utf-8")
    before = session.scalar(select(func.count()).select_from(cdm.Vocabulary))
    nested = session.begin_nested()
    with pytest.raises(AthenaLoadError, match=message):
        load_athena(session, folder)
    nested.rollback()
    assert session.scalar(select(func.count()).select_from(cdm.Vocabulary)) == before
    assert session.get(cdm.Concept, GY_ID) is None


def test_folder_without_concept_file(session: Session, tmp_path: Path) -> None:
    with pytest.raises(AthenaLoadError, match=r"no CONCEPT\.csv"):
        load_athena(session, tmp_path)
