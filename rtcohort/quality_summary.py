"""The printed summary of ``rtcohort db quality``, shared with ``rtcohort demo``."""

from __future__ import annotations

from sqlalchemy import Engine

from omop.quality import DEFAULT_TIMEOUT_SECONDS, QualityReport, run_quality
from omop.quality.report import summary_by_category

__all__ = ["quality_lines", "quality_messages", "quality_verdict", "run_quality_on"]

_STATUSES = ("passed", "failed", "known failure", "not applicable", "error")


def run_quality_on(
    engine: Engine, timeout_seconds: float | None = DEFAULT_TIMEOUT_SECONDS
) -> QualityReport:
    """Run every check in a read-only transaction (rolled back).

    A statement running longer than ``timeout_seconds`` (None or 0: no limit) is
    cancelled and reported as its check's error.
    """
    from omop.engine import session_factory

    with session_factory(engine)() as session:
        report = run_quality(session, timeout_seconds=timeout_seconds)
        session.rollback()
    return report


def quality_lines(report: QualityReport, *, known: bool = True) -> list[str]:
    """Return the summary by category, then each failing (and known) check."""
    lines = [f"{'category':<14}" + "".join(f"{s:>16}" for s in _STATUSES)]
    for category, counts in sorted(summary_by_category(report.results).items()):
        lines.append(f"{category:<14}" + "".join(f"{counts[s]:>16}" for s in _STATUSES))
    for r in report.results:
        if r.failed or r.is_error or (known and r.known_failure):
            where = ".".join(x for x in (r.check.table, r.check.field or "") if x)
            concept = f" concept {r.check.concept_id}" if r.check.concept_id else ""
            detail = (
                f"error: {r.error}"
                if r.is_error
                else f"{r.num_violated_rows}/{r.num_denominator_rows} rows "
                f"({100 * r.pct_violated_rows:.1f}% > {r.check.threshold:g}%)"
            )
            label = f"known failure ({r.known_failure})" if r.known_failure else ""
            lines.append(
                f"{r.status.upper()} {r.check.name} {where}{concept}: {detail} {label}"
            )
    seconds = (report.ended - report.started).total_seconds()
    lines.append(f"{len(report.results)} checks in {seconds:.1f} s")
    return lines


def quality_messages(engine: Engine) -> list[str]:
    """Run the checks and return the demo's lines (known failures counted, not listed).

    The last line says whether every applicable check passes.
    """
    return quality_verdict(engine)[0]


def quality_verdict(engine: Engine) -> tuple[list[str], int]:
    """Run the checks; return the demo's lines and how many checks fail.

    A check fails when it exceeds its threshold or errs; known failures are
    excepted (counted in the last line, not listed).
    """
    report = run_quality_on(engine)
    bad = [r for r in report.results if r.failed or r.is_error]
    n_known = sum(1 for r in report.results if r.known_failure)
    verdict = (
        f"data quality: every applicable check passes ({n_known} known failures, "
        "listed by `rtcohort db quality`)"
        if not bad
        else f"data quality: {len(bad)} checks FAIL (see `rtcohort db quality`)"
    )
    lines = ["rtcohort db quality:", *quality_lines(report, known=False), verdict]
    return lines, len(bad)
