"""Shared by the DQD check builders: count SQL and the :class:`Check` of one row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omop.quality.checks import Check, Dialect, ident
from omop.quality.control import CheckDescription, ControlRow

__all__ = ["Body", "Builder", "count_sql", "make_check"]

#: A check's ``(numerator, denominator, params)``, or why it is not applicable.
Body = tuple[str, str, dict[str, Any]] | str
#: ``(row, table, field, dialect) -> Body``: one DQD check type.
Builder = Callable[[ControlRow, str, str, Dialect], Body]


def count_sql(table: str, where: str = "", join: str = "") -> str:
    """Return ``SELECT COUNT(*)`` of ``table`` (alias ``t``), joined and filtered."""
    clause = f" WHERE {where}" if where else ""
    return f"SELECT COUNT(*) FROM {ident(table)} t{join}{clause}"


def make_check(
    desc: CheckDescription,
    row: ControlRow,
    t: str,
    f: str | None,
    body: Body,
    **extra: Any,
) -> Check:
    """Return the check of one control row (not applicable when ``body`` is text)."""
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
