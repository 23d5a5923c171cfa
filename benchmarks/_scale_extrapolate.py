"""Extrapolate the scale benchmark from two built sizes to a size not built.

A national registry (~300,000 patients) does not fit on this machine's disk, so its
figures are extrapolated from two cohorts that were built and measured (``results.json``
of ``benchmarks/scale.py``: ``NAME/build`` and ``NAME/queries``). The method:

- **database size and build time** grow with the rows written, which grow in
  proportion to the patients: ``x(N) = x(N2) * N / N2`` (from the larger build);
- **a query's latency** (median and p95 separately) is fitted as a power law
  ``t = a * N**b`` through the two measured sizes (``b`` = the log-log slope; a query
  that got faster gets ``b = 0``), and also scaled in proportion to the patients
  (``b = 1``). The verdict uses the larger of the two, so a query whose cost grows
  less than linearly is not credited with it unless both agree.

Run ``python benchmarks/scale.py extrapolate --db scale_12x2400 --db2 scale_12x8300
--to 300000``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["extrapolate", "format_table"]


def _power(n1: float, t1: float, n2: float, t2: float, n: float) -> tuple[float, float]:
    b = max(0.0, math.log(t2 / t1) / math.log(n2 / n1)) if t1 > 0 and t2 > 0 else 1.0
    return t2 * (n / n2) ** b, b


def extrapolate(
    results: dict[str, Any], small: str, large: str, to: int, goal_ms: float = 2000.0
) -> dict[str, Any]:
    """Return the figures of ``to`` patients from the builds ``small`` and ``large``.

    Parameters
    ----------
    results
        The contents of ``results.json``.
    small, large
        Database names measured (their ``/build`` and ``/queries`` entries).
    to
        Patients of the cohort to extrapolate to.
    goal_ms
        The p95 goal at that size.

    Returns
    -------
    dict
        ``build`` (size and times scaled from ``large``) and ``queries``: per label
        the measured p95 at both sizes, the log-log slope, the power-law and the
        proportional p95 at ``to``, and whether the larger of them meets ``goal_ms``.
    """
    try:
        b1, b2 = results[f"{small}/build"], results[f"{large}/build"]
        q1, q2 = results[f"{small}/queries"], results[f"{large}/queries"]
    except KeyError as exc:
        raise SystemExit(f"results.json has no {exc.args[0]!r}: build and query both "
                         "sizes first") from None  # fmt: skip
    n1, n2 = float(b1["patients"]), float(b2["patients"])
    if n2 <= n1:
        raise SystemExit(f"--db2 {large} ({n2:.0f} patients) must be larger than "
                         f"--db {small} ({n1:.0f})")  # fmt: skip
    ratio = to / n2
    rows = sum(b2["tables"].values()) if "tables" in b2 else b2["rows"]
    build = {
        "patients": to,
        "database_gib": b2["database_bytes"] * ratio / 2**30,
        "rows": rows * ratio,
        "load_s_at_large_rate": rows * ratio / b2["rows_per_s"],
    }
    queries = {}
    for label in sorted(set(q1) & set(q2)):
        m1, m2 = q1[label], q2[label]
        p95, slope = _power(n1, m1["p95_ms"], n2, m2["p95_ms"], to)
        median, _ = _power(n1, m1["median_ms"], n2, m2["median_ms"], to)
        linear = m2["p95_ms"] * ratio
        queries[label] = {
            "p95_small": m1["p95_ms"], "p95_large": m2["p95_ms"], "slope": slope,
            "median_power": median, "p95_power": p95, "p95_linear": linear,
            "meets_goal": max(p95, linear) < goal_ms,
        }  # fmt: skip
    return {"from": [n1, n2], "build": build, "queries": queries}


def format_table(figures: dict[str, Any], goal_ms: float = 2000.0) -> str:
    """Return the extrapolation as a Markdown table (ms)."""
    n1, n2 = figures["from"]
    to = figures["build"]["patients"]
    lines = [
        f"| query | p95 at {n1:,.0f} | p95 at {n2:,.0f} | slope b | "
        f"p95 at {to:,} (power) | p95 at {to:,} (proportional) | < {goal_ms:,.0f} ms |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, q in figures["queries"].items():
        lines.append(
            f"| {label} | {q['p95_small']:,.0f} | {q['p95_large']:,.0f} | "
            f"{q['slope']:.2f} | {q['p95_power']:,.0f} | {q['p95_linear']:,.0f} | "
            f"{'yes' if q['meets_goal'] else 'no'} |"
        )
    b = figures["build"]
    lines.append("")
    lines.append(
        f"Build at {to:,} patients (proportional to the larger build): "
        f"{b['rows']:,.0f} rows, {b['database_gib']:.1f} GiB, load "
        f"{b['load_s_at_large_rate'] / 60:,.0f} min at the larger build's rows/s."
    )
    return "\n".join(lines)
