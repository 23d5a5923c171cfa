"""Turn the DQD control files into :class:`~omop.quality.checks.Check` objects.

One builder per DQD check type writes the numerator and denominator SQL for one table,
field or concept, following the meaning of DQD's SQL templates (not their text). Only
tables of our schema are checked. A check type of the descriptions file without a
builder, or a row naming something our schema lacks, yields a not-applicable check with
the reason.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from omop.quality.checks import Check, Dialect, cdm_tables, ident, table_columns
from omop.quality.control import CheckDescription, ControlFiles, ControlRow
from omop.quality.errors import ControlFileError
from omop.quality.sqlrender import evaluate

__all__ = ["GENDER_CONCEPTS", "dqd_checks"]

#: OMOP gender concepts (DQD plausibleGender values Male / Female).
GENDER_CONCEPTS = {"Male": 8507, "Female": 8532}

_Body = tuple[str, str, dict[str, Any]] | str
_Builder = Callable[[ControlRow, str, str, Dialect], _Body]


def _count(table: str, where: str = "", join: str = "") -> str:
    clause = f" WHERE {where}" if where else ""
    return f"SELECT COUNT(*) FROM {ident(table)} t{join}{clause}"


def _person_completeness(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    num = (
        "SELECT COUNT(*) FROM person p WHERE NOT EXISTS "
        f"(SELECT 1 FROM {ident(t)} t WHERE t.person_id = p.person_id)"
    )
    return num, "SELECT COUNT(*) FROM person", {}


def _condition_era_completeness(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    persons = "SELECT DISTINCT person_id FROM condition_occurrence"
    num = (
        f"SELECT COUNT(*) FROM ({persons}) c WHERE NOT EXISTS "
        "(SELECT 1 FROM condition_era e WHERE e.person_id = c.person_id)"
    )
    return num, f"SELECT COUNT(*) FROM ({persons}) c", {}


def _period_overlap(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    num = _count(
        "observation_period",
        "EXISTS (SELECT 1 FROM observation_period o WHERE o.person_id = t.person_id "
        "AND o.observation_period_id <> t.observation_period_id "
        "AND o.observation_period_start_date <= t.observation_period_end_date "
        "AND o.observation_period_end_date >= t.observation_period_start_date)",
    )
    return num, _count("observation_period"), {}


def _cdm_table(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    return d.table_missing(), "SELECT 1", {"table_name": t}


def _cdm_field(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    return d.field_missing(), "SELECT 1", {"table_name": t, "field_name": f}


def _is_required(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    return _count(t, f"t.{f} IS NULL"), _count(t), {}


def _datatype(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    return _count(t, d.not_integer(f"t.{f}")), _count(t), {}


def _primary_key(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    dupes = f"SELECT {f} FROM {t} GROUP BY {f} HAVING COUNT(*) > 1"
    return _count(t, f"t.{f} IN ({dupes})"), _count(t), {}


def _foreign_key(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    fk_table, fk_field = row["fkTableName"].lower(), row["fkFieldName"].lower()
    if fk_field not in table_columns(fk_table):
        return f"{fk_table}.{fk_field} is not in our schema"
    missing = (
        f"t.{f} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {ident(fk_table)} fk "
        f"WHERE fk.{ident(fk_field)} = t.{f})"
    )
    return _count(t, missing), _count(t), {}


def _concept_attr(column: str, control: str) -> _Builder:
    def build(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
        where = f"co.concept_id <> 0 AND co.{column} <> :expected"
        join = f" JOIN concept co ON co.concept_id = t.{f}"
        return _count(t, where, join), _count(t), {"expected": row[control]}

    return build


def _standard_valid(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    where = (
        "co.concept_id <> 0 AND (co.standard_concept IS NULL "
        "OR co.standard_concept <> 'S' OR co.invalid_reason IS NOT NULL)"
    )
    join = f" JOIN concept co ON co.concept_id = t.{f}"
    return _count(t, where, join), _count(t), {}


def _value_completeness(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    return _count(t, f"t.{f} IS NULL"), _count(t), {}


def _concept_completeness(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    where = f"t.{f} = 0"
    if f == "unit_concept_id" and "value_as_number" in table_columns(t):
        where += " AND t.value_as_number IS NOT NULL"
    return _count(t, where), _count(t), {}


def _source_value_completeness(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    concept = row["standardConceptFieldName"].lower()
    if concept not in table_columns(t):
        return f"{t}.{concept or '(no concept field)'} is not in our schema"
    values = f"SELECT DISTINCT {f} FROM {t} WHERE {f} IS NOT NULL"
    unmapped = f"{values} AND {ident(concept)} = 0"
    return (
        f"SELECT COUNT(*) FROM ({unmapped}) v",
        f"SELECT COUNT(*) FROM ({values}) v",
        {},
    )


def _bound(column: str, op: str) -> _Builder:
    def build(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
        try:
            value = evaluate(row[column])
        except ControlFileError as exc:
            raise ControlFileError(f"{row.where()}: {column}: {exc}") from None
        if isinstance(value, datetime.date):
            where = f"{d.day(f't.{f}')} {op} {d.day(':bound')}"
            param: Any = d.date_param(value)
        else:
            where, param = f"t.{f} {op} :bound", value
        present = f"t.{f} IS NOT NULL"
        return _count(t, f"{present} AND {where}"), _count(t, present), {"bound": param}

    return build


def _temporal_after(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    other_t = row["plausibleTemporalAfterTableName"].lower()
    other_f = row["plausibleTemporalAfterFieldName"].lower()
    present = f"t.{f} IS NOT NULL"
    if other_t == "person" and t != "person":
        where = f"{present} AND {d.day(f't.{f}')} < {d.birth('p')}"
        join = " JOIN person p ON p.person_id = t.person_id"
        return _count(t, where, join), _count(t, present), {}
    if other_t == t and other_f in table_columns(t):
        where = f"{present} AND {d.day(f't.{f}')} < {d.day(f't.{ident(other_f)}')}"
        return _count(t, where), _count(t, present), {}
    return f"comparison with {other_t}.{other_f} is not implemented"


def _after_death(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    if t == "death" or "person_id" not in table_columns(t):
        return "the table has no person_id to join DEATH on"
    join = " JOIN death de ON de.person_id = t.person_id"
    where = f"{d.day(f't.{f}')} > {d.plus_days('de.death_date', 60)}"
    den = _count(t, "t.person_id IN (SELECT person_id FROM death)")
    return _count(t, where, join), den, {}


def _after_birth(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    if t == "person" or "person_id" not in table_columns(t):
        return "the table has no person_id to join PERSON on"
    present = f"t.{f} IS NOT NULL"
    where = f"{present} AND {d.day(f't.{f}')} < {d.birth('p')}"
    join = " JOIN person p ON p.person_id = t.person_id"
    return _count(t, where, join), _count(t, present), {}


def _start_before_end(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    end = row["plausibleStartBeforeEndFieldName"].lower()
    if end not in table_columns(t):
        return f"{t}.{end} is not in our schema"
    both = f"t.{f} IS NOT NULL AND t.{ident(end)} IS NOT NULL"
    where = f"{both} AND {d.day(f't.{f}')} > {d.day(f't.{end}')}"
    return _count(t, where), _count(t, both), {}


def _within_visit(row: ControlRow, t: str, f: str, d: Dialect) -> _Body:
    if "visit_occurrence_id" not in table_columns(t):
        return "the table has no visit_occurrence_id"
    join = " JOIN visit_occurrence vo ON vo.visit_occurrence_id = t.visit_occurrence_id"
    day = d.day(f"t.{f}")
    where = (
        f"{day} < {d.plus_days('vo.visit_start_date', -7)} "
        f"OR {day} > {d.plus_days('vo.visit_end_date', 7)}"
    )
    return _count(t, where, join), _count(t, "", join), {}


FIELD_BUILDERS: dict[str, tuple[str, _Builder]] = {
    "cdmField": ("cdmFieldName", _cdm_field),
    "isRequired": ("isRequired", _is_required),
    "cdmDatatype": ("cdmDatatype", _datatype),
    "isPrimaryKey": ("isPrimaryKey", _primary_key),
    "isForeignKey": ("isForeignKey", _foreign_key),
    "fkDomain": ("fkDomain", _concept_attr("domain_id", "fkDomain")),
    "fkClass": ("fkClass", _concept_attr("concept_class_id", "fkClass")),
    "isStandardValidConcept": ("isStandardValidConcept", _standard_valid),
    "measureValueCompleteness": ("measureValueCompleteness", _value_completeness),
    "standardConceptRecordCompleteness": (
        "standardConceptRecordCompleteness",
        _concept_completeness,
    ),
    "sourceConceptRecordCompleteness": (
        "sourceConceptRecordCompleteness",
        _concept_completeness,
    ),
    "sourceValueCompleteness": ("sourceValueCompleteness", _source_value_completeness),
    "plausibleValueLow": ("plausibleValueLow", _bound("plausibleValueLow", "<")),
    "plausibleValueHigh": ("plausibleValueHigh", _bound("plausibleValueHigh", ">")),
    "plausibleTemporalAfter": ("plausibleTemporalAfter", _temporal_after),
    "plausibleDuringLife": ("plausibleDuringLife", _after_death),
    "plausibleBeforeDeath": ("plausibleBeforeDeath", _after_death),
    "plausibleAfterBirth": ("plausibleAfterBirth", _after_birth),
    "plausibleStartBeforeEnd": ("plausibleStartBeforeEnd", _start_before_end),
    "withinVisitDates": ("withinVisitDates", _within_visit),
}
TABLE_BUILDERS: dict[str, tuple[str, _Builder]] = {
    "cdmTable": ("cdmTableName", _cdm_table),
    "measurePersonCompleteness": ("measurePersonCompleteness", _person_completeness),
    "measureConditionEraCompleteness": (
        "measureConditionEraCompleteness",
        _condition_era_completeness,
    ),
    "measureObservationPeriodOverlap": (
        "measureObservationPeriodOverlap",
        _period_overlap,
    ),
}


def _switched_on(row: ControlRow, column: str) -> bool:
    value = row[column]
    if column == "cdmDatatype":
        return value.lower() == "integer"
    if column in {"cdmTableName", "cdmFieldName", "fkDomain", "fkClass"}:
        return bool(value) and (column != "fkDomain" or row["isForeignKey"] == "Yes")
    if column in {"plausibleValueLow", "plausibleValueHigh"}:
        return bool(value)
    return value == "Yes"


def _check(
    desc: CheckDescription,
    row: ControlRow,
    t: str,
    f: str | None,
    body: _Body,
    **extra: Any,
) -> Check:
    threshold = row.number(f"{desc.name}Threshold")
    common: dict[str, Any] = {
        "name": desc.name,
        "level": desc.level,
        "table": t,
        "field": f,
        "threshold": threshold,
        "category": desc.category,
        "subcategory": desc.subcategory,
        "context": desc.context,
        "description": desc.description,
        "sql_file": desc.sql_file,
        "severity": desc.severity,
        "notes": row[f"{desc.name}Notes"],
        **extra,
    }
    if isinstance(body, str):
        return Check(numerator="", denominator="", not_applicable=body, **common)
    num, den, params = body
    return Check(numerator=num, denominator=den, params=params, **common)


def _level_checks(
    control: ControlFiles,
    rows: list[ControlRow],
    builders: dict[str, tuple[str, _Builder]],
    level: str,
    dialect: Dialect,
) -> list[Check]:
    out: list[Check] = []
    tables = cdm_tables()
    for desc in control.descriptions.values():
        if desc.level != level:
            continue
        entry = builders.get(desc.name)
        for row in rows:
            t = row["cdmTableName"].lower()
            f = row["cdmFieldName"].lower() if level == "FIELD" else None
            if t not in tables:
                continue
            if entry is None:
                out.append(_check(desc, row, t, f, "check type not implemented"))
                break
            column, build = entry
            if not _switched_on(row, column):
                continue
            if f is not None and desc.name != "cdmField" and f not in table_columns(t):
                body: _Body = f"{t}.{f} is not in our schema"
            else:
                body = build(row, ident(t), ident(f) if f else "", dialect)
            out.append(_check(desc, row, t, f, body))
    return out


def _concept_checks(control: ControlFiles, dialect: Dialect) -> list[Check]:
    out: list[Check] = []
    for row in control.concepts:
        t, f = row["cdmTableName"].lower(), row["cdmFieldName"].lower()
        if f not in table_columns(t):
            continue
        try:
            ids = tuple(int(c) for c in row["conceptId"].split(","))
            unit = int(row["unitConceptId"]) if row["unitConceptId"] else None
        except ValueError:
            raise ControlFileError(
                f"{row.where()}: conceptId {row['conceptId']!r} / unitConceptId "
                f"{row['unitConceptId']!r} are not integers"
            ) from None
        concept: int | str = ids[0] if len(ids) == 1 else ", ".join(map(str, ids))
        for desc in control.descriptions.values():
            if desc.level != "CONCEPT":
                continue
            body = _concept_body(desc.name, row, t, f, ids=ids, unit=unit)
            if body is not None:
                out.append(
                    _check(
                        desc, row, t, f, body, concept_id=concept, unit_concept_id=unit
                    )
                )
    return out


def _concept_body(
    name: str,
    row: ControlRow,
    t: str,
    f: str,
    *,
    ids: tuple[int, ...],
    unit: int | None,
) -> _Body | None:
    marks = ", ".join(f":c{i}" for i in range(len(ids)))
    rows = f"t.{ident(f)} IN ({marks})"
    params: dict[str, Any] = {f"c{i}": c for i, c in enumerate(ids)}
    if name in {"plausibleValueLow", "plausibleValueHigh"} and row[name]:
        if unit is None or "value_as_number" not in table_columns(t):
            return "needs a unit and value_as_number"
        present = (
            f"{rows} AND t.unit_concept_id = :unit AND t.value_as_number IS NOT NULL"
        )
        op = "<" if name.endswith("Low") else ">"
        params |= {"unit": unit, "bound": row.number(name)}
        return (
            _count(t, f"{present} AND t.value_as_number {op} :bound"),
            _count(t, present),
            params,
        )
    if name.startswith("plausibleGender") and row[name]:
        gender = GENDER_CONCEPTS.get(row[name])
        if gender is None:
            raise ControlFileError(f"{row.where()}: {name} {row[name]!r}")
        if name.endswith("UseDescendants"):
            rows = (
                f"t.{f} IN (SELECT descendant_concept_id FROM concept_ancestor "
                f"WHERE ancestor_concept_id IN ({marks}))"
            )
        join = " JOIN person p ON p.person_id = t.person_id"
        params["gender"] = gender
        return (
            _count(t, f"{rows} AND p.gender_concept_id <> :gender", join),
            _count(t, rows),
            params,
        )
    if name == "plausibleUnitConceptIds" and row["plausibleUnitConceptIdsThreshold"]:
        present = (
            f"{rows} AND t.value_as_number IS NOT NULL "
            "AND t.unit_source_value IS NOT NULL AND t.unit_source_value <> ''"
        )
        cells = [c.strip() for c in row[name].split(",") if c.strip()]
        try:
            units = sorted({int(c) for c in cells})
        except ValueError:
            raise ControlFileError(f"{row.where()}: {name} {row[name]!r}") from None
        if units:
            marks = ", ".join(f":u{i}" for i in range(len(units)))
            params |= {f"u{i}": u for i, u in enumerate(units)}
            bad = f"(t.unit_concept_id IS NULL OR t.unit_concept_id NOT IN ({marks}))"
        else:
            bad = "t.unit_concept_id IS NOT NULL"
        return _count(t, f"{present} AND {bad}"), _count(t, present), params
    return None


def dqd_checks(control: ControlFiles, backend: str) -> list[Check]:
    """Return every DQD check the control files switch on for tables of our schema.

    Parameters
    ----------
    control
        The parsed control files (:func:`omop.quality.control.load_control`).
    backend
        ``sqlite`` or ``postgresql``.

    Raises
    ------
    ControlFileError
        When a value cell cannot be evaluated (naming file and line).
    """
    dialect = Dialect(backend)
    return [
        *_level_checks(control, control.tables, TABLE_BUILDERS, "TABLE", dialect),
        *_level_checks(control, control.fields, FIELD_BUILDERS, "FIELD", dialect),
        *_concept_checks(control, dialect),
    ]
