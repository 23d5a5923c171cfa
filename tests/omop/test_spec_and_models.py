"""The generated models follow the bundled spec exactly."""

from __future__ import annotations

import csv
import io
from importlib import resources

from sqlalchemy import BigInteger, Integer, String

from omop import cdm, codegen
from omop.models import metadata
from omop.spec import load_spec, spec_table_names


def test_generated_module_is_up_to_date() -> None:
    text = (resources.files("omop") / "cdm.py").read_text(encoding="utf-8")
    assert text == codegen.generate(), "run: python -m omop.codegen"


def test_spec_has_39_cdm_tables_plus_imaging() -> None:
    names = spec_table_names()
    assert len(names) == 41
    assert {"episode", "episode_event", "image_occurrence", "image_feature"} <= set(
        names
    )
    assert "survey_conduct" in spec_table_names(include_extensions=True)


def _raw_fields(filename: str) -> list[dict[str, str]]:
    text = (resources.files("omop") / "spec" / filename).read_text(encoding="utf-8-sig")
    return [
        {k.strip(): (v or "").strip() for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(text))
    ]


def test_every_spec_column_is_in_the_metadata_with_its_nullability() -> None:
    rows = _raw_fields("OMOP_CDMv5.4_Field_Level.csv") + _raw_fields(
        "OMOP_CDM_Medical_Imaging_Ex_Field_Level.csv"
    )
    assert len(rows) == 432 + 23
    for row in rows:
        table = metadata.tables[row["cdmTableName"].lower()]
        column = table.c[row["cdmFieldName"].lower().strip('"')]
        required = row["isRequired"].lower() == "yes"
        assert column.nullable is (not required) or column.primary_key, column
        assert column.primary_key is (row["isPrimaryKey"].lower() == "yes"), column
        if row["isForeignKey"].lower() == "yes":
            target = row["fkTableName"].lower()
            assert {fk.column.table.name for fk in column.foreign_keys} == {target}


def test_types_and_lengths() -> None:
    person = cdm.Person.__table__
    assert isinstance(person.c.person_id.type, Integer)
    assert isinstance(person.c.person_source_value.type, String)
    assert person.c.person_source_value.type.length == 50
    survey = cdm.SurveyConduct.__table__
    assert isinstance(survey.c.survey_conduct_id.type, BigInteger)
    assert cdm.NoteNlp.__table__.c["offset"].type.length == 50


def test_tables_without_spec_key_have_no_database_key() -> None:
    for table in load_spec():
        if not table.primary_key:
            assert not metadata.tables[table.name].primary_key.columns, table.name
