"""The bundled OMOP specification: which tables and columns the CDM defines.

Parses the official OHDSI spec CSVs shipped in ``omop/spec/`` (see its ``SOURCE.md``)
into :class:`TableSpec` / :class:`FieldSpec`. The code generator (:mod:`omop.codegen`)
and ``rtcohort db check`` both read the schema from here, so the models and the check
can never disagree about what the spec says.

Examples
--------
>>> tables = load_spec()
>>> len([t for t in tables if t.source != "v6.0 extension"])
41
>>> tables_by_name()["person"].primary_key
('person_id',)
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

from omop.errors import SpecError

__all__ = [
    "FieldSpec",
    "TableSpec",
    "TypeFamily",
    "load_spec",
    "spec_table_names",
    "tables_by_name",
]

_CDM_FIELDS = "OMOP_CDMv5.4_Field_Level.csv"
_IMAGING_FIELDS = "OMOP_CDM_Medical_Imaging_Ex_Field_Level.csv"
_SURVEY_FIELDS = "OMOP_CDMv6.0_survey_conduct_Field_Level.csv"

# Tables whose foreign keys point into the vocabulary cycle
# (concept -> domain/vocabulary/concept_class -> concept): their constraints are
# DEFERRABLE INITIALLY DEFERRED so a vocabulary load can insert in any order.
VOCABULARY_TABLES = frozenset(
    {
        "concept",
        "vocabulary",
        "domain",
        "concept_class",
        "concept_relationship",
        "relationship",
        "concept_synonym",
        "concept_ancestor",
        "source_to_concept_map",
        "drug_strength",
    }
)


class TypeFamily(StrEnum):
    """Database type families that ``db check`` compares."""

    INTEGER = "integer"
    BIGINT = "bigint"
    FLOAT = "float"
    STRING = "string"
    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"


@dataclass(frozen=True)
class FieldSpec:
    """One column of the spec."""

    table: str
    name: str
    required: bool
    datatype: str
    family: TypeFamily
    length: int | None
    primary_key: bool
    fk_table: str | None
    fk_field: str | None


@dataclass(frozen=True)
class TableSpec:
    """One table of the spec, its columns in spec order."""

    name: str
    source: str
    fields: tuple[FieldSpec, ...]

    @property
    def primary_key(self) -> tuple[str, ...]:
        """Names of the columns the spec marks as primary key (may be empty)."""
        return tuple(f.name for f in self.fields if f.primary_key)


_VARCHAR = re.compile(r"varchar\((\d+|max)\)", re.IGNORECASE)


def _parse_type(raw: str, where: str) -> tuple[TypeFamily, int | None]:
    text = raw.strip().lower()
    if text in {"integer", "int"}:
        return TypeFamily.INTEGER, None
    if text == "bigint":
        return TypeFamily.BIGINT, None
    if text == "float":
        return TypeFamily.FLOAT, None
    if text == "date":
        return TypeFamily.DATE, None
    if text == "datetime":
        return TypeFamily.DATETIME, None
    match = _VARCHAR.fullmatch(text)
    if match:
        size = match.group(1)
        if size == "max":
            return TypeFamily.TEXT, None
        return TypeFamily.STRING, int(size)
    raise SpecError(f"{where}: unknown cdmDatatype {raw!r}")


def _clean(value: str | None) -> str:
    text = (value or "").strip()
    return "" if text == "NA" else text


def _read_fields(filename: str, source: str) -> list[FieldSpec]:
    path = resources.files("omop") / "spec" / filename
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    fields: list[FieldSpec] = []
    for line, raw in enumerate(reader, start=2):
        row = {k.strip(): _clean(v) for k, v in raw.items() if k is not None}
        where = f"{filename} line {line}"
        try:
            table = row["cdmTableName"].lower()
            name = row["cdmFieldName"].lower().strip('"')
            datatype = row["cdmDatatype"]
        except KeyError as exc:
            raise SpecError(f"{where}: missing column {exc}") from None
        family, length = _parse_type(datatype, where)
        fk_field_raw = row.get("fkFieldName") or row.get("fkFrieldName") or ""
        is_fk = row.get("isForeignKey", "").lower() == "yes"
        fields.append(
            FieldSpec(
                table=table,
                name=name,
                required=row.get("isRequired", "").lower() == "yes",
                datatype=datatype,
                family=family,
                length=length,
                primary_key=row.get("isPrimaryKey", "").lower() == "yes",
                fk_table=row["fkTableName"].lower() if is_fk else None,
                fk_field=fk_field_raw.lower() if is_fk and fk_field_raw else None,
            )
        )
    return fields


@cache
def load_spec() -> tuple[TableSpec, ...]:
    """Return every table of the bundled spec, in spec order.

    The 39 tables of OMOP CDM v5.4, the two tables of the medical-imaging extension
    (``image_occurrence``, ``image_feature``) and ``survey_conduct`` from CDM v6.0,
    which the platform uses as an extension table.
    """
    sources = (
        (_CDM_FIELDS, "CDM v5.4"),
        (_IMAGING_FIELDS, "imaging extension"),
        (_SURVEY_FIELDS, "v6.0 extension"),
    )
    tables: dict[str, tuple[str, list[FieldSpec]]] = {}
    for filename, source in sources:
        for field in _read_fields(filename, source):
            tables.setdefault(field.table, (source, []))[1].append(field)
    return tuple(
        TableSpec(name=name, source=source, fields=tuple(fields))
        for name, (source, fields) in tables.items()
    )


@cache
def tables_by_name() -> dict[str, TableSpec]:
    """Return the spec tables keyed by (lower-case) table name."""
    return {t.name: t for t in load_spec()}


def spec_table_names(*, include_extensions: bool = False) -> tuple[str, ...]:
    """Names of the 41 spec tables (CDM v5.4 + imaging), optionally with extensions."""
    return tuple(
        t.name
        for t in load_spec()
        if include_extensions or t.source != "v6.0 extension"
    )
