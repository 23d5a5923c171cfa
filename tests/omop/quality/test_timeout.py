"""A statement of a check that runs past the time limit is that check's error.

On both backends: a recursive count to 10^9 (minutes) is cancelled after 0.3 s and
reported as :data:`omop.quality.timeout.TIMED_OUT`; the session stays usable, the next
check passes, and after the block the limit is gone.
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.orm import Session

from omop.quality import Check
from omop.quality.dqd_common import count_sql
from omop.quality.run import run_check
from omop.quality.timeout import TIMED_OUT, is_timeout, statement_timeout

_SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
    "WHERE x < {n}) SELECT COUNT(*) FROM c"
)


def _check(name: str, numerator: str, denominator: str) -> Check:
    return Check(
        name=name,
        level="TABLE",
        table="person",
        field=None,
        numerator=numerator,
        denominator=denominator,
        threshold=100.0,
        category="Conformance",
    )


def test_a_slow_check_is_cancelled_and_the_next_runs(session: Session) -> None:
    slow = _check("slow", _SLOW.format(n=10**9), "SELECT 1")
    quick = _check("quick", count_sql("person"), "SELECT 1")
    started = time.perf_counter()
    with statement_timeout(session, 0.3):
        cancelled = run_check(session, slow)
        after = run_check(session, quick)
    assert time.perf_counter() - started < 10
    assert cancelled.error == TIMED_OUT and cancelled.status == "error"
    assert 0.3 <= cancelled.execution_seconds < 10
    assert after.error is None


def test_the_limit_is_gone_after_the_block(session: Session) -> None:
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        before = session.execute(text("SHOW statement_timeout")).scalar_one()
    with statement_timeout(session, 0.05):
        pass
    if postgres:
        assert session.execute(text("SHOW statement_timeout")).scalar_one() == before
    # longer than the 0.05 s the block allowed (about 0.2-1 s), and not cancelled
    n = session.execute(text(_SLOW.format(n=300_000))).scalar_one()
    assert n == 300_000


def test_timeout_messages() -> None:
    assert is_timeout("canceling statement due to statement timeout")
    assert is_timeout("interrupted")
    assert not is_timeout('column "x" does not exist')
