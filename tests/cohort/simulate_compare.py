"""Dump every table a simulated load wrote, keys and load times left out (tests)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

#: Columns that differ between two correct loads: keys, links by key, load times.
_VOLATILE = ("recorded_at", "loaded_at", "alg_datetime", "received_at", "stored_at")
_SKIP_TABLES = {"alembic_version", "mapping_rule", "mapping_ruleset"}


def _stable(column: str) -> bool:
    if column in _VOLATILE:
        return False
    return column.endswith("_concept_id") or not (
        column.endswith("_id") or column == "dvh_id"
    )


def table_rows(engine: Engine) -> dict[str, Counter[tuple[Any, ...]]]:
    """Return, per non-empty table, the multiset of rows without volatile columns."""
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    inspector = inspect(engine)
    with engine.connect() as conn:
        for table in inspector.get_table_names():
            if table in _SKIP_TABLES:
                continue
            columns = [
                c["name"] for c in inspector.get_columns(table) if _stable(c["name"])
            ]
            if not columns:
                continue
            select = ", ".join(f'"{c}"' for c in columns)
            rows = conn.execute(text(f'SELECT {select} FROM "{table}"')).all()
            if rows:
                out[table] = Counter(
                    tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                    for row in rows
                )
    return out
