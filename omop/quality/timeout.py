"""A time limit per SQL statement while the checks run, on PostgreSQL and SQLite.

A check whose statement runs longer than the limit is cancelled and reported as that
check's error (:data:`TIMED_OUT`); the others still run. PostgreSQL: ``SET LOCAL
statement_timeout`` for the rest of the caller's transaction (a check's savepoint
rolled back after a cancel keeps it). SQLite has no such setting: a progress handler
on the connection interrupts a statement once its deadline passes, and every
statement gets a new deadline (``before_cursor_execute``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

__all__ = ["TIMED_OUT", "is_timeout", "statement_timeout"]

#: The error of a check cancelled by the limit.
TIMED_OUT = "cancelled: a statement ran longer than the time limit (--timeout)"

_MESSAGES = ("canceling statement due to statement timeout", "interrupted")
#: SQLite virtual-machine instructions between two looks at the clock.
_SQLITE_STEPS = 10_000


def is_timeout(message: str) -> bool:
    """Whether a database error message is a cancel by :func:`statement_timeout`."""
    low = message.lower()
    return any(m in low for m in _MESSAGES)


@contextmanager
def statement_timeout(session: Session, seconds: float | None) -> Iterator[None]:
    """Limit every statement of ``session`` to ``seconds`` inside the block.

    ``None`` or 0 sets no limit. The session's transaction is begun if it was not.
    """
    if not seconds:
        yield
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # set_config(..., true) is SET LOCAL: for the rest of the transaction.
        setting = text("SELECT set_config('statement_timeout', :v, true)")
        before = connection.execute(text("SHOW statement_timeout")).scalar_one()
        connection.execute(setting, {"v": f"{int(seconds * 1000)}ms"})
        try:
            yield
        finally:
            if session.in_transaction():
                connection.execute(setting, {"v": str(before)})
        return
    raw: Any = connection.connection.dbapi_connection
    deadline = [time.monotonic() + seconds]

    def _start(*_args: Any) -> None:
        deadline[0] = time.monotonic() + seconds

    def _progress() -> int:
        return int(time.monotonic() > deadline[0])

    event.listen(connection, "before_cursor_execute", _start)
    raw.set_progress_handler(_progress, _SQLITE_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, _SQLITE_STEPS)
        event.remove(connection, "before_cursor_execute", _start)
