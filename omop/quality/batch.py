"""Run the plain counts of many checks on one scan of their table.

Most DQD checks count rows of one table (``SELECT COUNT(*) FROM x t [JOIN ...]
[WHERE ...]``, :func:`omop.quality.dqd_common.count_sql`). Counted one by one, a large
table is scanned twice per check; here the counts sharing a table and join become the
``COUNT(*) FILTER (WHERE ...)`` columns of one query, so the results are the same
counts at a fraction of the scans. Counts with a correlated subquery (``EXISTS``),
concept-level checks (index lookups of a few concepts) and every other form run on
their own (:func:`omop.quality.run.run_check`), as does every check of a scan that
fails, so an error still belongs to its check alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from omop.quality.checks import Check
from omop.quality.control import KnownFailure
from omop.quality.run import CheckResult, result_of_counts, run_check
from omop.quality.timeout import TIMED_OUT, is_timeout

__all__ = ["MAX_COUNTS_PER_SCAN", "plain_count", "run_batched"]

#: Counts computed by one query (columns of its single row).
MAX_COUNTS_PER_SCAN = 40

_PLAIN = re.compile(
    r"SELECT COUNT\(\*\) FROM (\w+) t((?: JOIN \w+ \w+ ON [\w.]+ = [\w.]+)*)"
    r"(?: WHERE (.*))?",
    re.S,
)
_PARAM = re.compile(r"(?<![:\w]):(\w+)\b")

#: ``(table, joins)`` of a scan, and one count: ``(where, params)``.
_Scan = tuple[str, str]
_Count = tuple[str, tuple[tuple[str, Any], ...]]


def plain_count(sql: str, params: dict[str, Any]) -> tuple[_Scan, _Count] | None:
    """Split ``SELECT COUNT(*) FROM x t [JOIN ...] [WHERE ...]`` into scan and count.

    Returns None for any other form, or for a correlated subquery (``EXISTS``),
    which is faster as the anti- or semi-join the database plans for it alone.
    """
    found = _PLAIN.fullmatch(sql)
    if found is None or "EXISTS" in sql.upper():
        return None
    where = found.group(3) or ""
    used = tuple(sorted((n, params[n]) for n in set(_PARAM.findall(where))))
    if any(n not in params for n in _PARAM.findall(where)):
        return None
    return (found.group(1), found.group(2)), (where, used)


def _scan_sql(scan: _Scan, counts: Sequence[_Count]) -> tuple[str, dict[str, Any]]:
    columns: list[str] = []
    params: dict[str, Any] = {}
    for i, (where, used) in enumerate(counts):
        if where:
            names = {n for n, _ in used}

            def rename(m: re.Match[str], i: int = i, names: set[str] = names) -> str:
                return f":b{i}_{m.group(1)}" if m.group(1) in names else m.group(0)

            columns.append(f"COUNT(*) FILTER (WHERE {_PARAM.sub(rename, where)})")
            params |= {f"b{i}_{n}": v for n, v in used}
        else:
            columns.append("COUNT(*)")
    table, joins = scan
    return f"SELECT {', '.join(columns)} FROM {table} t{joins}", params


def _run_scans(
    session: Session, scans: dict[_Scan, list[_Count]]
) -> dict[tuple[_Scan, _Count], tuple[int, float] | float]:
    """Return each count and its share of the scan's seconds.

    A scan that failed gives nothing (each check then runs on its own); a scan
    cancelled by the time limit gives its seconds alone (its checks time out too).
    """
    out: dict[tuple[_Scan, _Count], tuple[int, float] | float] = {}
    for scan, counts in scans.items():
        for start in range(0, len(counts), MAX_COUNTS_PER_SCAN):
            chunk = counts[start : start + MAX_COUNTS_PER_SCAN]
            sql, params = _scan_sql(scan, chunk)
            started = time.perf_counter()
            try:
                with session.begin_nested():
                    row = session.execute(text(sql), params).one()
            except SQLAlchemyError as exc:
                if is_timeout(str(getattr(exc, "orig", None) or exc)):
                    spent = time.perf_counter() - started
                    out |= {(scan, count): spent for count in chunk}
                continue  # otherwise each check of the scan runs on its own
            share = (time.perf_counter() - started) / len(chunk)
            for count, value in zip(chunk, row, strict=True):
                out[(scan, count)] = (int(value or 0), share)
    return out


def run_batched(
    session: Session, checks: Sequence[Check], known: Sequence[KnownFailure] = ()
) -> list[CheckResult]:
    """Run ``checks`` (plain counts of a table on one scan) and return results in order.

    The results equal :func:`~omop.quality.run.run_check`'s one by one; a check's
    ``execution_seconds`` is its share of the scans it was counted on.
    """
    parts: dict[int, list[tuple[_Scan, _Count]]] = {}
    scans: dict[_Scan, list[_Count]] = {}
    for i, check in enumerate(checks):
        if check.not_applicable or check.level == "CONCEPT":
            continue
        split = [plain_count(sql, dict(check.params)) for sql in
                 (check.denominator, check.numerator)]  # fmt: skip
        if None in split:
            continue
        parts[i] = [s for s in split if s is not None]
        for scan, count in parts[i]:
            listed = scans.setdefault(scan, [])
            if count not in listed:
                listed.append(count)
    counted = _run_scans(session, scans)
    results = []
    for i, check in enumerate(checks):
        got = [counted.get(p) for p in parts.get(i, [])]
        cancelled = [g for g in got if isinstance(g, float)]
        if cancelled:
            results.append(
                CheckResult(check, error=TIMED_OUT, execution_seconds=cancelled[0])
            )
            continue
        if not got or None in got:
            results.append(run_check(session, check, known))
            continue
        (den, t_den), (num, t_num) = got  # type: ignore[misc]
        results.append(result_of_counts(check, den, num, t_den + t_num, known))
    return results
