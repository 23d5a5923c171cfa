"""Generate ``omop/cdm.py``, the typed SQLAlchemy models, from the bundled spec CSVs.

Run ``python -m omop.codegen`` after changing a spec CSV; ``python -m omop.codegen
--check`` exits 1 when the checked-in module differs from what the spec generates (a
test runs the same comparison).

Conventions of the generated models:

- table and column names exactly as the spec (lower case);
- ``integer`` -> ``Integer``, ``bigint`` -> ``BigInteger`` (``INTEGER`` on SQLite, so
  that the key is a rowid alias), ``float`` -> ``Float``, ``varchar(n)`` ->
  ``String(n)``, ``varchar(max)`` -> ``Text``, ``date``/``datetime`` -> ``Date`` /
  ``DateTime`` (OMOP stores local, naive timestamps);
- ``NOT NULL`` where the spec says ``isRequired``;
- a primary key constraint where the spec marks one; tables without one get a
  mapper-level key only (no constraint in the database), so that the ORM can map them;
- the indexes of the OHDSI CDM v5.4 index script, plus the event links we join on
  (:data:`INDEXES`);
- a foreign key for every ``isForeignKey`` column. Keys from vocabulary tables are
  ``DEFERRABLE INITIALLY DEFERRED`` (the vocabulary references itself in a cycle);
  the cycle edges back into ``concept`` are created after the tables (``use_alter``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omop.errors import SpecError
from omop.spec import VOCABULARY_TABLES, FieldSpec, TableSpec, TypeFamily, load_spec

__all__ = ["class_name", "generate", "main"]

TARGET = Path(__file__).with_name("cdm.py")

# Mapper-level keys for the tables the spec gives no primary key (natural keys).
MAPPER_KEYS: dict[str, tuple[str, ...]] = {
    "death": ("person_id",),
    "fact_relationship": (
        "domain_concept_id_1",
        "fact_id_1",
        "domain_concept_id_2",
        "fact_id_2",
        "relationship_concept_id",
    ),
    "episode_event": ("episode_id", "event_id", "episode_event_field_concept_id"),
    "cdm_source": ("cdm_source_abbreviation",),
    "concept_relationship": ("concept_id_1", "concept_id_2", "relationship_id"),
    "concept_synonym": ("concept_id", "concept_synonym_name", "language_concept_id"),
    "concept_ancestor": ("ancestor_concept_id", "descendant_concept_id"),
    "source_to_concept_map": (
        "source_vocabulary_id",
        "source_code",
        "target_concept_id",
        "valid_end_date",
    ),
    "drug_strength": ("drug_concept_id", "ingredient_concept_id"),
    "cohort": (
        "cohort_definition_id",
        "subject_id",
        "cohort_start_date",
        "cohort_end_date",
    ),
    "cohort_definition": ("cohort_definition_id",),
}

# Indexes (not in the spec CSVs): those of the OHDSI CDM v5.4 index script -- the person
# of every clinical table, its main concept and its visit, and the vocabulary lookups --
# plus the event links the platform joins on. Designed for 300,000 patients.
INDEXES: dict[str, tuple[str, ...]] = {
    "person": ("gender_concept_id", "person_source_value"),
    "observation_period": ("person_id",),
    "visit_occurrence": ("person_id", "visit_concept_id"),
    "visit_detail": ("person_id", "visit_detail_concept_id", "visit_occurrence_id"),
    "condition_occurrence": (
        "person_id",
        "condition_concept_id",
        "condition_source_concept_id",
        "visit_occurrence_id",
    ),
    "drug_exposure": ("person_id", "drug_concept_id", "visit_occurrence_id"),
    "procedure_occurrence": (
        "person_id",
        "procedure_concept_id",
        "visit_occurrence_id",
    ),
    "device_exposure": ("person_id", "device_concept_id", "visit_occurrence_id"),
    "measurement": (
        "person_id",
        "measurement_concept_id",
        "measurement_source_concept_id",
        "visit_occurrence_id",
        "measurement_event_id",
    ),
    "observation": (
        "person_id",
        "observation_concept_id",
        "observation_source_concept_id",
        "visit_occurrence_id",
        "observation_event_id",
    ),
    "death": ("person_id",),
    "note": ("person_id", "note_type_concept_id", "visit_occurrence_id"),
    "note_nlp": ("note_id", "note_nlp_concept_id"),
    "specimen": ("person_id", "specimen_concept_id"),
    "fact_relationship": (
        "domain_concept_id_1",
        "domain_concept_id_2",
        "relationship_concept_id",
    ),
    "payer_plan_period": ("person_id",),
    "cost": ("cost_event_id",),
    "drug_era": ("person_id", "drug_concept_id"),
    "dose_era": ("person_id", "drug_concept_id"),
    "condition_era": ("person_id", "condition_concept_id"),
    "episode": ("person_id", "episode_concept_id"),
    "episode_event": ("episode_id", "event_id"),
    "concept": ("concept_code", "vocabulary_id", "domain_id", "concept_class_id"),
    "concept_relationship": ("concept_id_1", "concept_id_2", "relationship_id"),
    "concept_synonym": ("concept_id",),
    "concept_ancestor": ("ancestor_concept_id", "descendant_concept_id"),
    "source_to_concept_map": (
        "target_concept_id",
        "source_vocabulary_id",
        "target_vocabulary_id",
        "source_code",
    ),
    "drug_strength": ("drug_concept_id", "ingredient_concept_id"),
    "cohort": ("cohort_definition_id", "subject_id"),
    "image_occurrence": ("person_id", "image_series_uid"),
    "image_feature": ("person_id", "image_occurrence_id", "image_feature_event_id"),
    "survey_conduct": ("person_id", "survey_source_identifier"),
}

# Primary keys holding codes given by a vocabulary, not generated by the database.
_NATURAL_KEYS = VOCABULARY_TABLES

# Foreign keys that close the vocabulary cycle: created after the tables.
_CYCLE_EDGES = frozenset(
    {
        ("domain", "domain_concept_id"),
        ("vocabulary", "vocabulary_concept_id"),
        ("concept_class", "concept_class_concept_id"),
        ("relationship", "relationship_concept_id"),
    }
)

_SA_TYPE = {
    TypeFamily.INTEGER: "Integer",
    TypeFamily.BIGINT: 'BigInteger().with_variant(Integer, "sqlite")',
    TypeFamily.FLOAT: "Float",
    TypeFamily.TEXT: "Text",
    TypeFamily.DATE: "Date",
    TypeFamily.DATETIME: "DateTime",
}
_PY_TYPE = {
    TypeFamily.INTEGER: "int",
    TypeFamily.BIGINT: "int",
    TypeFamily.FLOAT: "float",
    TypeFamily.STRING: "str",
    TypeFamily.TEXT: "str",
    TypeFamily.DATE: "datetime.date",
    TypeFamily.DATETIME: "datetime.datetime",
}


def class_name(table: str) -> str:
    """Return the model class name of a table (``care_site`` -> ``CareSite``)."""
    return "".join(part.capitalize() for part in table.split("_"))


def _column(table: TableSpec, field: FieldSpec) -> str:
    sa_type = (
        f"String({field.length})"
        if field.family is TypeFamily.STRING
        else _SA_TYPE[field.family]
    )
    args = [sa_type]
    if field.fk_table and field.fk_field:
        fk_args = [f'"{field.fk_table}.{field.fk_field}"']
        if table.name in VOCABULARY_TABLES:
            fk_args += ["deferrable=True", 'initially="DEFERRED"']
        if (table.name, field.name) in _CYCLE_EDGES:
            fk_args.append("use_alter=True")
        args.append(f"ForeignKey({', '.join(fk_args)})")
    kwargs = []
    if field.name in INDEXES.get(table.name, ()):
        kwargs.append("index=True")
    if field.primary_key:
        kwargs.append("primary_key=True")
        if field.family in {TypeFamily.INTEGER, TypeFamily.BIGINT}:
            autoinc = table.name not in _NATURAL_KEYS
            kwargs.append(f"autoincrement={autoinc}")
    else:
        kwargs.append(f"nullable={not field.required}")
    py_type = _PY_TYPE[field.family]
    if not field.required and not field.primary_key:
        py_type = f"{py_type} | None"
    return (
        f"    {field.name}: Mapped[{py_type}] = mapped_column("
        f"{', '.join(args + kwargs)})"
    )


def _model(table: TableSpec) -> str:
    lines = [
        "",
        "",
        "",
        f"class {class_name(table.name)}(Base):",
        f'    """``{table.name}`` ({table.source})."""',
        "",
        f'    __tablename__ = "{table.name}"',
    ]
    if not table.primary_key:
        keys = MAPPER_KEYS[table.name]
        lines.append(
            '    __mapper_args__ = {"primary_key": ['
            + ", ".join(f'"{k}"' for k in keys)
            + "]}"
        )
    lines.append("")
    lines.extend(_column(table, f) for f in table.fields)
    return "\n".join(lines)


def generate() -> str:
    """Return the source text of ``omop/cdm.py`` for the bundled spec."""
    tables = load_spec()
    columns = {t.name: {f.name for f in t.fields} for t in tables}
    unknown = [
        f"{t}.{c}"
        for t, cs in INDEXES.items()
        for c in cs
        if c not in columns.get(t, set())
    ]
    if unknown:
        raise SpecError(f"indexes name columns the spec lacks: {unknown}")
    names = "".join(f'\n    "{n}",' for n in sorted(class_name(t.name) for t in tables))
    header = f'''"""OMOP CDM v5.4, medical-imaging extension and SURVEY_CONDUCT models.

GENERATED by ``python -m omop.codegen`` from ``omop/spec/*.csv``: do not edit by hand.
"""

from __future__ import annotations

import datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from omop.base import Base

__all__ = [{names}\n]'''
    return header + "".join(_model(t) for t in tables) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the generated module."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            sys.stderr.write(f"{TARGET} is out of date: run python -m omop.codegen\n")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
