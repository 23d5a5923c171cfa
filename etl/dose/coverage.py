"""Which dose metrics a structure partly outside the dose grid may report.

A DVH holds the dose of the part of a structure inside the dose grid only
(:attr:`~etl.dose.histogram.DVH.outside_grid_cc` is left out). Below a minimum
coverage (inside volume over structure volume, default 99 %) every metric that depends
on the dose of the part left out is withheld: mean, Dmin, ``Dx%``, ``Dxcc`` and
``Vx`` (a skull of 4,521 cm3 with 2 cm3 in a Gamma Knife grid gets no D95). Dmax is
kept, as a lower bound of the structure's maximum, with a warning.

The one decision for every writer (``rtcohort dvh``, ``import``):
:func:`metric_allowed`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from etl.dose.histogram import DVH
from etl.dose.metrics import Metric, MetricKind, parse_metric

__all__ = [
    "DEFAULT_MIN_COVERAGE_PCT",
    "Coverage",
    "dose_coverage",
    "metric_allowed",
    "metrics_allowed",
]

#: Default ``--min-coverage``: metrics need at least this % of the volume in the grid.
DEFAULT_MIN_COVERAGE_PCT = 99.0


@dataclass(frozen=True)
class Coverage:
    """How much of a structure the dose grid covers, and what follows.

    Attributes
    ----------
    pct : float
        Volume inside the grid over the structure volume, in %; NaN without volume.
    allowed : bool
        Whether the metrics that depend on the whole structure may be reported.
    warning : str
        Why not (or what is partly missing); empty when the grid covers it all.
    """

    pct: float
    allowed: bool
    warning: str


def metrics_allowed(
    coverage_pct: float, min_coverage_pct: float = DEFAULT_MIN_COVERAGE_PCT
) -> bool:
    """Whether metrics depending on the whole structure's dose may be reported.

    Examples
    --------
    >>> metrics_allowed(99.5), metrics_allowed(98.0), metrics_allowed(float("nan"))
    (True, False, False)
    """
    return math.isfinite(coverage_pct) and coverage_pct >= min_coverage_pct


def metric_allowed(
    metric: Metric | str,
    coverage_pct: float,
    min_coverage_pct: float = DEFAULT_MIN_COVERAGE_PCT,
) -> bool:
    """Whether one metric may be reported at this coverage.

    ``Max`` always may (a lower bound when coverage is incomplete); mean, min, ``Dx``
    and ``Vx`` only at ``min_coverage_pct`` or more. An ``EQD2 `` prefix is ignored.

    Examples
    --------
    >>> metric_allowed("Max[Gy]", 2.0), metric_allowed("D95%[Gy]", 2.0)
    (True, False)
    >>> metric_allowed("EQD2 Mean[Gy]", 100.0)
    True
    """
    if isinstance(metric, str):
        metric = parse_metric(metric.removeprefix("EQD2 "))
    if metric.kind is MetricKind.MAX:
        return True
    return metrics_allowed(coverage_pct, min_coverage_pct)


def dose_coverage(
    dvh: DVH, min_coverage_pct: float = DEFAULT_MIN_COVERAGE_PCT
) -> Coverage:
    """Coverage of a structure by the dose grid, with the decision and its reason.

    Examples
    --------
    >>> import numpy as np
    >>> d = DVH(10.0, 4.0, 1.0, 2.0, 3.0, 0.01, np.full(200, 0.03))
    >>> c = dose_coverage(d)
    >>> round(c.pct, 6), c.allowed
    (60.0, False)
    """
    if not dvh.volume_cc > 0:
        return Coverage(math.nan, False, "structure without volume")
    pct = 100.0 * (dvh.volume_cc - dvh.outside_grid_cc) / dvh.volume_cc
    allowed = metrics_allowed(pct, min_coverage_pct)
    if dvh.outside_grid_cc <= 0:
        return Coverage(100.0, allowed, "")
    if not pct > 0:
        return Coverage(0.0, False, "entirely outside the dose grid; no dose metric")
    if allowed:
        return Coverage(
            pct, True, f"{100 - pct:.2g}% of the volume outside the dose grid"
        )
    return Coverage(
        pct,
        False,
        f"dose grid covers {pct:.3g}% of the volume (below {min_coverage_pct:g}%): "
        "mean, min, Dx and Vx left empty; max is a lower bound",
    )
