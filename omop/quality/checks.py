"""The check object shared by the DQD checks and our own, and SQL helpers per backend.

A :class:`Check` is data: its numerator and denominator are SQL texts that each return
one count, with bound parameters in :attr:`Check.params`. Identifiers in the SQL are
checked against our schema before they are written (:func:`table_columns`), so nothing
from a control file reaches the SQL except through a bound parameter.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Table

from omop.quality.errors import QualityError

__all__ = [
    "Check",
    "Dialect",
    "cdm_tables",
    "table_columns",
]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Check:
    """One data-quality check: a share of violating rows compared with a threshold.

    Attributes
    ----------
    name
        Check type (DQD ``checkName``, e.g. ``isRequired``, or one of ours).
    level
        ``TABLE``, ``FIELD`` or ``CONCEPT``.
    table, field
        The CDM table and field checked (lower case; ``field`` None for table checks).
    numerator, denominator
        SQL returning one count each: the violating rows and the rows considered.
    threshold
        Percent of violating rows allowed; the check fails above it.
    category, subcategory, context
        Kahn category (Conformance, Completeness, Plausibility), subcategory and context
        (Verification, Validation).
    description
        What the check finds, for the report.
    params
        Bound parameters of both SQL texts.
    concept_id, unit_concept_id
        The concept (and unit) of a concept-level check.
    not_applicable
        Why the check cannot run here; when set the SQL is not run.
    sql_file, severity, notes
        DQD's template name (or ``rtcohort``), severity and threshold notes.
    """

    name: str
    level: str
    table: str
    field: str | None
    numerator: str
    denominator: str
    threshold: float
    category: str
    subcategory: str = ""
    context: str = ""
    description: str = ""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    concept_id: int | str | None = None
    unit_concept_id: int | None = None
    not_applicable: str | None = None
    sql_file: str = ""
    severity: str = ""
    notes: str = ""

    @property
    def check_id(self) -> str:
        """Return DQD's identifier: name, table, field, concept and unit, lower case."""
        parts = [
            self.name,
            self.table,
            self.field,
            self.concept_id,
            self.unit_concept_id,
        ]
        return "_".join(str(p) for p in parts if p not in (None, "")).lower()


@cache
def cdm_tables() -> dict[str, Table]:
    """Return the CDM tables of our schema (41 spec tables + ``survey_conduct``)."""
    import omop.cdm

    out: dict[str, Table] = {}
    for name in omop.cdm.__all__:
        table = getattr(omop.cdm, name).__table__
        out[table.name] = table
    return out


def table_columns(table: str) -> set[str]:
    """Return the column names of a CDM table (empty when it is not in our schema)."""
    found = cdm_tables().get(table)
    return set() if found is None else {c.name for c in found.columns}


def ident(name: str) -> str:
    """Return ``name`` when it is a plain lower-case identifier, else raise."""
    if not _IDENT.match(name):
        raise QualityError(f"refusing identifier {name!r} in generated SQL")
    return name


@dataclass(frozen=True)
class Dialect:
    """The few SQL fragments that differ between SQLite and PostgreSQL."""

    name: str

    def __post_init__(self) -> None:
        """Accept only the two backends we support."""
        if self.name not in {"sqlite", "postgresql"}:
            raise QualityError(f"no data-quality SQL for backend {self.name!r}")

    @property
    def sqlite(self) -> bool:
        """Whether this is SQLite."""
        return self.name == "sqlite"

    def day(self, expr: str) -> str:
        """Return ``expr`` (a date or datetime) as a comparable day number / value."""
        return f"julianday({expr})" if self.sqlite else expr

    def plus_days(self, expr: str, days: int) -> str:
        """Return ``expr`` moved by ``days`` days, comparable with :meth:`day`."""
        if self.sqlite:
            return f"(julianday({expr}) + {int(days)})"
        return f"({expr} + INTERVAL '{int(days)} day')"

    def birth(self, alias: str) -> str:
        """Return the person's birth (datetime, else 1 January), as a day.

        ``year_of_birth`` 0 means unknown (a person met first in DICOM, whose
        birth date de-identification emptied): no event lies before it.
        """
        if self.sqlite:
            year = f"printf('%04d-01-01', {alias}.year_of_birth)"
            return f"julianday(COALESCE({alias}.birth_datetime, {year}))"
        return (
            f"COALESCE({alias}.birth_datetime, "
            f"make_date(NULLIF({alias}.year_of_birth, 0), 1, 1)::timestamp)"
        )

    def date_param(self, value: datetime.date) -> Any:
        """Return a date bound parameter in the form the backend compares."""
        return value.isoformat() if self.sqlite else value

    def not_integer(self, column: str) -> str:
        """Return a condition true when a non-null ``column`` holds a non-integer."""
        if self.sqlite:
            return f"{column} IS NOT NULL AND typeof({column}) <> 'integer'"
        return f"{column} IS NOT NULL AND CAST({column} AS TEXT) !~ '^-?[0-9]+$'"

    def table_missing(self) -> str:
        """Return SQL counting 1 when table ``:table_name`` is absent."""
        if self.sqlite:
            return (
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM sqlite_master "
                "WHERE type = 'table' AND name = :table_name) THEN 0 ELSE 1 END"
            )
        return (
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = :table_name) "
            "THEN 0 ELSE 1 END"
        )

    def field_missing(self) -> str:
        """Return SQL counting 1 when column ``:field_name`` is absent."""
        if self.sqlite:
            return (
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM pragma_table_info(:table_name) "
                "WHERE name = :field_name) THEN 0 ELSE 1 END"
            )
        return (
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :table_name "
            "AND column_name = :field_name) THEN 0 ELSE 1 END"
        )
