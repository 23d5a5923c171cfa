"""Primary keys and table writes for the bulk ``--into-db`` path.

:class:`IdBlock` reserves keys of a table ahead of the rows (PostgreSQL: the
table's sequence, in blocks; SQLite: one past the largest key, counted on in the
transaction, which SQLite serialises). :func:`write_rows` writes one table's rows in
the caller's transaction: PostgreSQL ``COPY`` through :func:`omop.bulk.bulk_insert`,
SQLite a Core ``executemany`` (which applies the column types).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, insert, text
from sqlalchemy.orm import DeclarativeBase, Session

from omop.bulk import bulk_insert

__all__ = ["Fields", "IdBlock", "Period", "Rows", "write_rows"]

Row = dict[str, Any]

_FIRST_BLOCK = 256
_MAX_BLOCK = 65_536


def _table(model: type[DeclarativeBase]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


class IdBlock:
    """Hands out primary keys of many tables; :meth:`begin` with each transaction.

    PostgreSQL keys come from the sequences, which are not transactional: keys
    reserved in a transaction that rolled back stay reserved and are used later.
    """

    def __init__(self) -> None:
        self._session: Session | None = None
        self._postgres = False
        self._free: dict[str, list[int]] = {}
        self._next: dict[str, int] = {}
        self._block: dict[str, int] = {}
        self._keys: dict[type[DeclarativeBase], tuple[str, str]] = {}

    def begin(self, session: Session) -> None:
        """Use ``session`` (a new transaction) from now on."""
        self._session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"
        self._next.clear()

    def _key(self, model: type[DeclarativeBase]) -> tuple[str, str]:
        key = self._keys.get(model)
        if key is None:
            table = _table(model)
            (column,) = table.primary_key.columns
            key = self._keys[model] = (table.name, column.name)
        return key

    def take(self, model: type[DeclarativeBase]) -> int:
        """Return one unused primary key of ``model``'s table."""
        name, column = self._key(model)
        assert self._session is not None, "call begin(session) first"
        if not self._postgres:
            if name not in self._next:
                top = self._session.scalar(
                    text(f'SELECT MAX("{column}") FROM "{name}"')
                )
                self._next[name] = int(top or 0) + 1
            self._next[name] += 1
            return self._next[name] - 1
        free = self._free.setdefault(name, [])
        if not free:
            n = self._block.get(name, _FIRST_BLOCK)
            self._block[name] = min(2 * n, _MAX_BLOCK)  # grows with the table's use
            ids = self._session.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:t, :c)) "
                    "FROM generate_series(1, :n)"
                ),
                {"t": name, "c": column, "n": n},
            ).scalars()
            free.extend(sorted((int(i) for i in ids), reverse=True))
        return free.pop()

    def many(self, model: type[DeclarativeBase], n: int) -> list[int]:
        """Return ``n`` unused primary keys of ``model``'s table (as ``n`` takes)."""
        if n <= 0:
            return []
        first = self.take(model)
        if self._postgres:
            return [first, *(self.take(model) for _ in range(n - 1))]
        name, _ = self._key(model)
        self._next[name] += n - 1
        return list(range(first, first + n))


def write_rows(
    session: Session, model: type[DeclarativeBase], rows: Sequence[dict[str, Any]]
) -> int:
    """Write ``rows`` (column mappings, keys may differ) into ``model``'s table."""
    if not rows:
        return 0
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = list(names)
    table = _table(model)
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        return bulk_insert(
            session,
            table,
            [tuple(map(row.get, columns)) for row in rows],
            columns=columns,
        )
    if any(c.default is not None for c in table.columns if c.name not in names):
        full = [{c: row.get(c) for c in columns} for row in rows]
        session.execute(insert(table), full)  # Core fills the Python-side defaults
        return len(full)
    return _sqlite_rows(session, table, columns, rows)


def _sqlite_rows(
    session: Session, table: Table, columns: list[str], rows: Sequence[Row]
) -> int:
    """Write rows with the driver's ``executemany``, through the columns' types.

    Each value goes through its column type's bind processor for the dialect, as a
    Core ``insert`` applies it (dates and times as text, booleans as integers), so the
    stored values are the same; without the statement compiled per row.
    """
    dialect = session.get_bind().dialect
    procs = [
        (i, proc)
        for i, c in enumerate(columns)
        if (proc := table.c[c].type.dialect_impl(dialect).bind_processor(dialect))
        is not None
    ]
    values: list[list[Any]] = [list(map(row.get, columns)) for row in rows]
    for i, proc in procs:
        for v in values:
            v[i] = proc(v[i])
    column_sql = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f'INSERT INTO "{table.name}" ({column_sql}) VALUES ({marks})', values
        )
    finally:
        cursor.close()
    return len(values)


@dataclass(frozen=True)
class Fields:
    """Field concepts of the ``*_event_id`` links (looked up once per load)."""

    episode: int
    procedure: int
    measurement: int
    image_feature: int
    condition: int
    survey: int


@dataclass
class Rows:
    """Rows of one batch, by table, in the order they are written."""

    ids: IdBlock
    now: datetime.datetime
    tables: dict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))
    files: list[tuple[str, int]] = field(default_factory=list)

    def add(
        self, model: type[DeclarativeBase], row: Row, key: str | None = None
    ) -> int:
        """Add a row (with a new key in column ``key``); return the key (or 0)."""
        new = 0
        if key is not None:
            new = self.ids.take(model)
            row = {key: new, **row}
        self.tables[str(model.__tablename__)].append(row)
        return new


class Period:
    """The union of the intervals the slow path's writers extend the period to."""

    def __init__(self, start: datetime.date) -> None:
        self.start = self.end = start

    def extend(self, start: datetime.date, end: datetime.date | None = None) -> None:
        """Widen the span to ``[start, end]``."""
        self.start = min(self.start, start)
        self.end = max(self.end, start, end or start)
