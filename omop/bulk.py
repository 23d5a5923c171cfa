"""Bulk insert into any table: PostgreSQL ``COPY``, SQLite batched ``executemany``.

Runs in the caller's transaction (the session's connection), so a failed load rolls
back with everything else the caller did.

Examples
--------
>>> from omop.cdm import Concept  # doctest: +SKIP
>>> bulk_insert(session, Concept, rows)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import DeclarativeBase, Session

__all__ = ["bulk_insert"]

_SQLITE_BATCH = 20_000


def _table(target: type[DeclarativeBase] | Table) -> Table:
    if isinstance(target, Table):
        return target
    table = target.__table__
    assert isinstance(table, Table)
    return table


def _columns(
    table: Table,
    first: Mapping[str, Any] | Sequence[Any],
    columns: Sequence[str] | None,
) -> list[str]:
    if columns is not None:
        names = list(columns)
    elif isinstance(first, Mapping):
        names = list(first.keys())
    else:
        raise TypeError("rows given as sequences need the columns argument")
    unknown = [n for n in names if n not in table.c]
    if unknown:
        raise ValueError(f"{table.name}: unknown columns {unknown}")
    return names


def _as_tuples(
    rows: Iterable[Mapping[str, Any] | Sequence[Any]], names: list[str]
) -> Iterable[Sequence[Any]]:
    for row in rows:
        if isinstance(row, Mapping):
            yield tuple(row[n] for n in names)
        else:
            yield row


def bulk_insert(
    session: Session,
    target: type[DeclarativeBase] | Table,
    rows: Iterable[Mapping[str, Any] | Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
) -> int:
    """Insert many rows fast into ``target`` and return how many were inserted.

    Parameters
    ----------
    session
        Open session; the rows are written on its connection, in its transaction.
    target
        A mapped model class or a Table.
    rows
        Mappings (column -> value) or sequences in the order of ``columns``.
    columns
        Column names; taken from the first mapping when omitted.

    Notes
    -----
    On PostgreSQL the rows are streamed with ``COPY ... FROM STDIN`` (psycopg 3); when
    they include an auto-increment primary key, its sequence is moved past the largest
    value so later ordinary inserts do not collide. On SQLite they are written with the
    driver's ``executemany`` in batches of 20,000.
    """
    table = _table(target)
    iterator = iter(rows)
    try:
        first = next(iterator)
    except StopIteration:
        return 0
    names = _columns(table, first, columns)
    tuples = _as_tuples([first], names)
    connection = session.connection()
    dialect = connection.dialect.name
    count = 0
    if dialect == "postgresql":
        dbapi = connection.connection.driver_connection
        assert dbapi is not None
        column_sql = ", ".join(f'"{n}"' for n in names)
        statement = f'COPY "{table.name}" ({column_sql}) FROM STDIN'
        with dbapi.cursor() as cursor, cursor.copy(statement) as copy:
            for chain in (tuples, _as_tuples(iterator, names)):
                for row in chain:
                    copy.write_row(row)
                    count += 1
        _advance_sequences(session, table, names)
    else:
        placeholders = ", ".join("?" for _ in names)
        column_sql = ", ".join(f'"{n}"' for n in names)
        sql = f'INSERT INTO "{table.name}" ({column_sql}) VALUES ({placeholders})'
        dbapi = connection.connection.driver_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        try:
            rest = _as_tuples(iterator, names)
            batch = list(tuples) + list(islice(rest, _SQLITE_BATCH - 1))
            while batch:
                cursor.executemany(sql, batch)
                count += len(batch)
                batch = list(islice(rest, _SQLITE_BATCH))
        finally:
            cursor.close()
    return count


def _advance_sequences(session: Session, table: Table, names: list[str]) -> None:
    """Move the key's sequence past the copied ids, never backwards.

    Sequences are not transactional: a concurrent writer may take values (one by
    one, or a block of them in one statement) while this statement runs. So the
    sequence is set only when the visible maximum is above its last value (ids
    that did not come from it); ids taken from the sequence leave it alone.
    Setting it to ``GREATEST(maximum, last value)`` read at the start of the
    statement could move it back under keys another writer took meanwhile, which
    then came out twice (a duplicate key in a parallel ``simulate --into-db``).
    """
    for column in table.primary_key.columns:
        if column.name in names and column.autoincrement is True:
            largest = session.scalar(select(func.max(column)))
            if largest is not None:
                session.execute(
                    text(
                        "SELECT setval(s, :v) "
                        "FROM (SELECT pg_get_serial_sequence(:t, :c)::regclass AS s) q "
                        "WHERE :v > COALESCE(pg_sequence_last_value(s), 0)"
                    ),
                    {"t": table.name, "c": column.name, "v": int(largest)},
                )
