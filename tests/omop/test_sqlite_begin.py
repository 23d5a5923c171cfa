"""SQLite transactions of a read-then-write caller: deferred vs ``BEGIN IMMEDIATE``.

In WAL mode a deferred transaction that has read, and then writes after another
connection committed, is refused at once (``SQLITE_BUSY_SNAPSHOT``: its snapshot is
stale; the busy timeout does not help). The web app's reads all write an audit record,
so its engine begins ``IMMEDIATE`` (:func:`omop.engine.make_engine`).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from omop.engine import make_engine


def _interleave(path: Path, immediate: bool) -> list[int]:
    """A reads, B writes and commits, A writes: return the rows at the end.

    With ``immediate`` B's transaction waits for A's lock, so B starts after A
    ends; without it B commits between A's read and A's write.
    """
    engine = make_engine(f"sqlite:///{path}", sqlite_immediate=immediate)
    with engine.begin() as conn:
        conn.execute(text("create table t (v integer)"))
        conn.execute(text("insert into t values (0)"))
    a_read = threading.Event()
    errors: list[BaseException] = []

    def writer_b() -> None:
        a_read.wait(10)
        try:
            with engine.begin() as conn:
                conn.execute(text("insert into t values (2)"))
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    other = threading.Thread(target=writer_b)
    other.start()
    try:
        with engine.begin() as conn:
            conn.execute(text("select count(*) from t")).scalar_one()
            a_read.set()
            if not immediate:
                other.join(10)  # B commits while A's snapshot is open
            conn.execute(text("insert into t values (1)"))
    finally:
        a_read.set()
        other.join(10)
    assert not errors
    with engine.connect() as conn:
        rows = [r[0] for r in conn.execute(text("select v from t order by rowid"))]
    engine.dispose()
    return rows


def test_deferred_read_then_write_is_refused_after_another_commit(
    tmp_path: Path,
) -> None:
    with pytest.raises(OperationalError, match="database is locked"):
        _interleave(tmp_path / "deferred.sqlite", immediate=False)


def test_immediate_read_then_write_waits_and_both_commit(tmp_path: Path) -> None:
    assert _interleave(tmp_path / "immediate.sqlite", immediate=True) == [0, 1, 2]


def test_immediate_is_ignored_on_postgresql_urls() -> None:
    engine = make_engine(
        "postgresql+psycopg://u@127.0.0.1:1/none", sqlite_immediate=True
    )
    assert engine.dialect.name == "postgresql"
    engine.dispose()
