"""Turn the DQD control files into :class:`~omop.quality.checks.Check` objects.

One builder per DQD check type writes the numerator and denominator SQL for one table,
field or concept, following the meaning of DQD's SQL templates (not their text). Only
tables of our schema are checked. A check type of the descriptions file without a
builder, or a row naming something our schema lacks, yields a not-applicable check with
the reason.
"""

from __future__ import annotations

import datetime
from typing import Any

from omop.quality.checks import Check, Dialect, cdm_tables, ident, table_columns
from omop.quality.control import ControlFiles, ControlRow
from omop.quality.dqd_common import Body, Builder, count_sql, make_check
from omop.quality.dqd_concepts import GENDER_CONCEPTS, concept_checks
from omop.quality.errors import ControlFileError
from omop.quality.sqlrender import evaluate

__all__ = ["GENDER_CONCEPTS", "dqd_checks"]


def _person_completeness(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    num = (
        "SELECT COUNT(*) FROM person p WHERE NOT EXISTS "
        f"(SELECT 1 FROM {ident(t)} t WHERE t.person_id = p.person_id)"
    )
    return num, "SELECT COUNT(*) FROM person", {}


def _condition_era_completeness(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    persons = "SELECT DISTINCT person_id FROM condition_occurrence"
    num = (
        f"SELECT COUNT(*) FROM ({persons}) c WHERE NOT EXISTS "
        "(SELECT 1 FROM condition_era e WHERE e.person_id = c.person_id)"
    )
    return num, f"SELECT COUNT(*) FROM ({persons}) c", {}


def _period_overlap(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    num = count_sql(
        "observation_period",
        "EXISTS (SELECT 1 FROM observation_period o WHERE o.person_id = t.person_id "
        "AND o.observation_period_id <> t.observation_period_id "
        "AND o.observation_period_start_date <= t.observation_period_end_date "
        "AND o.observation_period_end_date >= t.observation_period_start_date)",
    )
    return num, count_sql("observation_period"), {}


def _cdm_table(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    return d.table_missing(), "SELECT 1", {"table_name": t}


def _cdm_field(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    return d.field_missing(), "SELECT 1", {"table_name": t, "field_name": f}


def _is_required(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    return count_sql(t, f"t.{f} IS NULL"), count_sql(t), {}


def _datatype(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    return count_sql(t, d.not_integer(f"t.{f}")), count_sql(t), {}


def _primary_key(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    dupes = f"SELECT {f} FROM {t} GROUP BY {f} HAVING COUNT(*) > 1"
    return count_sql(t, f"t.{f} IN ({dupes})"), count_sql(t), {}


def _foreign_key(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    fk_table, fk_field = row["fkTableName"].lower(), row["fkFieldName"].lower()
    if fk_field not in table_columns(fk_table):
        return f"{fk_table}.{fk_field} is not in our schema"
    missing = (
        f"t.{f} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {ident(fk_table)} fk "
        f"WHERE fk.{ident(fk_field)} = t.{f})"
    )
    return count_sql(t, missing), count_sql(t), {}


def _concept_attr(column: str, control: str) -> Builder:
    def build(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
        where = f"co.concept_id <> 0 AND co.{column} <> :expected"
        join = f" JOIN concept co ON co.concept_id = t.{f}"
        return count_sql(t, where, join), count_sql(t), {"expected": row[control]}

    return build


def _standard_valid(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    where = (
        "co.concept_id <> 0 AND (co.standard_concept IS NULL "
        "OR co.standard_concept <> 'S' OR co.invalid_reason IS NOT NULL)"
    )
    join = f" JOIN concept co ON co.concept_id = t.{f}"
    return count_sql(t, where, join), count_sql(t), {}


def _value_completeness(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    return count_sql(t, f"t.{f} IS NULL"), count_sql(t), {}


def _concept_completeness(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    where = f"t.{f} = 0"
    if f == "unit_concept_id" and "value_as_number" in table_columns(t):
        where += " AND t.value_as_number IS NOT NULL"
    return count_sql(t, where), count_sql(t), {}


def _source_value_completeness(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
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


def _bound(column: str, op: str) -> Builder:
    def build(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
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
        return (
            count_sql(t, f"{present} AND {where}"),
            count_sql(t, present),
            {"bound": param},
        )

    return build


def _temporal_after(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    other_t = row["plausibleTemporalAfterTableName"].lower()
    other_f = row["plausibleTemporalAfterFieldName"].lower()
    present = f"t.{f} IS NOT NULL"
    if other_t == "person" and t != "person":
        where = f"{present} AND {d.day(f't.{f}')} < {d.birth('p')}"
        join = " JOIN person p ON p.person_id = t.person_id"
        return count_sql(t, where, join), count_sql(t, present), {}
    if other_t == t and other_f in table_columns(t):
        where = f"{present} AND {d.day(f't.{f}')} < {d.day(f't.{ident(other_f)}')}"
        return count_sql(t, where), count_sql(t, present), {}
    return f"comparison with {other_t}.{other_f} is not implemented"


def _after_death(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    if t == "death" or "person_id" not in table_columns(t):
        return "the table has no person_id to join DEATH on"
    join = " JOIN death de ON de.person_id = t.person_id"
    where = f"{d.day(f't.{f}')} > {d.plus_days('de.death_date', 60)}"
    den = count_sql(t, "t.person_id IN (SELECT person_id FROM death)")
    return count_sql(t, where, join), den, {}


def _after_birth(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    if t == "person" or "person_id" not in table_columns(t):
        return "the table has no person_id to join PERSON on"
    present = f"t.{f} IS NOT NULL"
    where = f"{present} AND {d.day(f't.{f}')} < {d.birth('p')}"
    join = " JOIN person p ON p.person_id = t.person_id"
    return count_sql(t, where, join), count_sql(t, present), {}


def _start_before_end(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    end = row["plausibleStartBeforeEndFieldName"].lower()
    if end not in table_columns(t):
        return f"{t}.{end} is not in our schema"
    both = f"t.{f} IS NOT NULL AND t.{ident(end)} IS NOT NULL"
    where = f"{both} AND {d.day(f't.{f}')} > {d.day(f't.{end}')}"
    return count_sql(t, where), count_sql(t, both), {}


def _within_visit(row: ControlRow, t: str, f: str, d: Dialect) -> Body:
    if "visit_occurrence_id" not in table_columns(t):
        return "the table has no visit_occurrence_id"
    join = " JOIN visit_occurrence vo ON vo.visit_occurrence_id = t.visit_occurrence_id"
    day = d.day(f"t.{f}")
    where = (
        f"{day} < {d.plus_days('vo.visit_start_date', -7)} "
        f"OR {day} > {d.plus_days('vo.visit_end_date', 7)}"
    )
    return count_sql(t, where, join), count_sql(t, "", join), {}


FIELD_BUILDERS: dict[str, tuple[str, Builder]] = {
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
TABLE_BUILDERS: dict[str, tuple[str, Builder]] = {
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


def _level_checks(
    control: ControlFiles,
    rows: list[ControlRow],
    builders: dict[str, tuple[str, Builder]],
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
                out.append(make_check(desc, row, t, f, "check type not implemented"))
                break
            column, build = entry
            if not _switched_on(row, column):
                continue
            if f is not None and desc.name != "cdmField" and f not in table_columns(t):
                body: Body = f"{t}.{f} is not in our schema"
            else:
                body = build(row, ident(t), ident(f) if f else "", dialect)
            out.append(make_check(desc, row, t, f, body))
    return out


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
        *concept_checks(control, dialect),
    ]
