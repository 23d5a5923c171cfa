"""DQD concept-level checks: plausible values, gender and units of given concepts.

One check per row of the concept control file and CONCEPT-level check type; a row
naming a field our schema lacks is skipped.
"""

from __future__ import annotations

from typing import Any

from omop.quality.checks import Check, Dialect, ident, table_columns
from omop.quality.control import ControlFiles, ControlRow
from omop.quality.dqd_common import Body, count_sql, make_check
from omop.quality.errors import ControlFileError

__all__ = ["GENDER_CONCEPTS", "concept_checks"]

#: OMOP gender concepts (DQD plausibleGender values Male / Female).
GENDER_CONCEPTS = {"Male": 8507, "Female": 8532}


def concept_checks(control: ControlFiles, dialect: Dialect) -> list[Check]:
    """Return the CONCEPT-level checks of the concept control file."""
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
                    make_check(
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
) -> Body | None:
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
            count_sql(t, f"{present} AND t.value_as_number {op} :bound"),
            count_sql(t, present),
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
            count_sql(t, f"{rows} AND p.gender_concept_id <> :gender", join),
            count_sql(t, rows),
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
        return count_sql(t, f"{present} AND {bad}"), count_sql(t, present), params
    return None
