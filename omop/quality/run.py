"""Run checks against a database and collect DQD-shaped results.

Each check runs inside its own SAVEPOINT, so SQL that fails on one backend is recorded
as an error of that check (``isError``) and the others still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from omop.quality.checks import Check
from omop.quality.control import KnownFailure
from omop.quality.timeout import TIMED_OUT, is_timeout

__all__ = ["CheckResult", "result_of_counts", "run_check", "run_checks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes
    ----------
    check
        The check that was run.
    num_violated_rows, num_denominator_rows
        Counts returned by the numerator and denominator SQL (0 when not run).
    pct_violated_rows
        ``num_violated_rows / num_denominator_rows`` (a fraction, as DQD stores it).
    failed
        The share exceeds the threshold (and the check is not a known failure).
    not_applicable, not_applicable_reason
        The check did not apply (no rows to consider, or not implementable here).
    error
        The database's message when the SQL failed.
    known_failure
        The reason from the known-failures file when a failure is expected.
    execution_seconds
        Wall time of the two queries.
    """

    check: Check
    num_violated_rows: int = 0
    num_denominator_rows: int = 0
    pct_violated_rows: float = 0.0
    failed: bool = False
    not_applicable: bool = False
    not_applicable_reason: str | None = None
    error: str | None = None
    known_failure: str | None = None
    execution_seconds: float = 0.0

    @property
    def is_error(self) -> bool:
        """Whether the check's SQL failed."""
        return self.error is not None

    @property
    def passed(self) -> bool:
        """Whether the check ran and stayed within its threshold (or is known)."""
        return not (self.failed or self.is_error or self.not_applicable)

    @property
    def status(self) -> str:
        """Return passed, failed, known failure, not applicable or error."""
        if self.is_error:
            return "error"
        if self.not_applicable:
            return "not applicable"
        if self.failed:
            return "failed"
        return "known failure" if self.known_failure else "passed"


def _count(session: Session, sql: str, check: Check) -> int:
    value = session.execute(text(sql), dict(check.params)).scalar()
    return int(value or 0)


def run_check(
    session: Session, check: Check, known: Sequence[KnownFailure] = ()
) -> CheckResult:
    """Run one check in a savepoint and return its result.

    A check whose SQL raises is returned with ``error`` set; the savepoint is rolled
    back so the session stays usable.
    """
    if check.not_applicable:
        return CheckResult(
            check, not_applicable=True, not_applicable_reason=check.not_applicable
        )
    started = time.perf_counter()
    try:
        with session.begin_nested():
            denominator = _count(session, check.denominator, check)
            violated = _count(session, check.numerator, check) if denominator else 0
    except SQLAlchemyError as exc:
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if is_timeout(message):
            message = TIMED_OUT
        log.warning("check %s failed to run: %s", check.check_id, message)
        return CheckResult(
            check, error=message, execution_seconds=time.perf_counter() - started
        )
    elapsed = time.perf_counter() - started
    return result_of_counts(check, denominator, violated, elapsed, known)


def result_of_counts(
    check: Check,
    denominator: int,
    violated: int,
    elapsed: float,
    known: Sequence[KnownFailure] = (),
) -> CheckResult:
    """Return the result of a check whose two counts are known.

    ``violated`` is ignored when ``denominator`` is 0 (the check did not apply).
    """
    if denominator == 0:
        return CheckResult(
            check,
            not_applicable=True,
            not_applicable_reason="no rows to check",
            execution_seconds=elapsed,
        )
    pct = violated / denominator
    over = pct * 100 > check.threshold
    reason = next(
        (
            k.reason
            for k in known
            if k.matches(check.name, check.table, check.field, check.concept_id)
        ),
        None,
    )
    return CheckResult(
        check,
        num_violated_rows=violated,
        num_denominator_rows=denominator,
        pct_violated_rows=pct,
        failed=over and reason is None,
        known_failure=reason if over else None,
        execution_seconds=elapsed,
    )


def run_checks(
    session: Session,
    checks: Sequence[Check],
    known: Sequence[KnownFailure] = (),
    *,
    batch: bool = True,
) -> list[CheckResult]:
    """Run every check and return the results in order; never commits.

    With ``batch`` (the default) the plain counts of one table are computed on one
    scan (:mod:`omop.quality.batch`); every other check, and every check of a scan
    that fails, runs on its own in a savepoint (:func:`run_check`).
    """
    if batch:
        from omop.quality.batch import run_batched

        return run_batched(session, checks, known)
    return [run_check(session, check, known) for check in checks]
