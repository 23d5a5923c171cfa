r"""Funnel plots of observed/expected ratios with exact Poisson control limits.

For a unit (a centre) with expected count :math:`E` the observed count is, under the
null hypothesis of no excess, :math:`O \sim \mathrm{Poisson}(E)`. The limits of the
ratio :math:`O/E` at coverage ``level`` are the Poisson quantiles at
:math:`p = (1 - \mathrm{level})/2` and :math:`1 - p`, divided by :math:`E`.

Two forms are offered. ``method="exact"`` uses the plain quantile
:math:`r_p = \min\{r : F(r) \ge p\}` (``scipy.stats.poisson.ppf``), which makes the
funnel a staircase. ``method="interpolated"`` (the default) uses Spiegelhalter's
interpolation (2005, appendix A.1.1), which gives a smooth funnel:

.. math::

    \alpha = \frac{F(r_p) - p}{F(r_p) - F(r_p - 1)}, \qquad
    \text{limit} = \frac{\max(r_p - \alpha, 0)}{E}

i.e. the inverse of the CDF interpolated linearly between consecutive integers.

References
----------
Spiegelhalter DJ. Funnel plots for comparing institutional performance. Stat Med
2005;24:1185-1202.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import ArrayLike, NDArray
from scipy.stats import poisson

from cohort.benchmark.errors import BenchmarkInputError

__all__ = ["funnel_limits", "funnel_points", "level_suffix"]

FloatArray = NDArray[np.float64]

_METHODS = ("interpolated", "exact")


def level_suffix(level: float) -> str:
    """Return the column suffix of a coverage level (``0.95`` -> ``"95"``).

    Examples
    --------
    >>> level_suffix(0.95), level_suffix(0.998)
    ('95', '998')
    """
    return f"{level * 100:g}".replace(".", "")


def _quantile(p: float, expected: FloatArray, method: str) -> FloatArray:
    r = poisson.ppf(p, expected)
    if method == "exact":
        return np.asarray(r, dtype=float)
    f_r = poisson.cdf(r, expected)
    f_below = poisson.cdf(r - 1.0, expected)
    alpha = (f_r - p) / (f_r - f_below)
    return np.asarray(np.maximum(r - alpha, 0.0), dtype=float)


def _expected_array(expected: ArrayLike) -> FloatArray:
    e = np.atleast_1d(np.asarray(expected, dtype=float))
    if e.ndim != 1:
        raise BenchmarkInputError("expected: must be one-dimensional")
    if np.any(~np.isfinite(e)) or np.any(e < 0):
        raise BenchmarkInputError("expected: counts must be finite and non-negative")
    return e


def funnel_limits(
    expected: ArrayLike,
    levels: Sequence[float] = (0.95, 0.998),
    *,
    method: str = "interpolated",
) -> pd.DataFrame:
    r"""Exact Poisson control limits of the ratio observed/expected.

    Parameters
    ----------
    expected : array_like
        Expected counts :math:`E \ge 0` (e.g. a grid for drawing the funnel, or the
        centres' own expected counts).
    levels : sequence of float
        Two-sided coverage levels in (0, 1); default 95% and 99.8%.
    method : {"interpolated", "exact"}
        Spiegelhalter's interpolated quantiles (smooth funnel, default) or the plain
        integer quantiles of ``scipy.stats.poisson.ppf`` (a staircase).

    Returns
    -------
    pandas.DataFrame
        Column ``expected`` and, per level, ``lower_<s>`` and ``upper_<s>`` (O/E
        ratios) with ``<s>`` from :func:`level_suffix` (``lower_95``, ``upper_998``).
        Where ``expected`` is 0 the limits are NaN.

    Examples
    --------
    >>> t = funnel_limits([10.0, 100.0], method="exact")
    >>> t[["lower_95", "upper_95"]].round(2).values.tolist()
    [[0.4, 1.7], [0.81, 1.2]]
    """
    if method not in _METHODS:
        raise BenchmarkInputError(f"method: {method!r} is not one of {_METHODS}")
    e = _expected_array(expected)
    out = {"expected": e}
    positive = e > 0
    safe = np.where(positive, e, 1.0)
    for level in levels:
        if not 0.0 < float(level) < 1.0:
            raise BenchmarkInputError(f"levels: {level!r} is not in (0, 1)")
        p = (1.0 - float(level)) / 2.0
        s = level_suffix(float(level))
        with np.errstate(invalid="ignore", divide="ignore"):
            lo = _quantile(p, safe, method) / safe
            hi = _quantile(1.0 - p, safe, method) / safe
        out[f"lower_{s}"] = np.where(positive, lo, np.nan)
        out[f"upper_{s}"] = np.where(positive, hi, np.nan)
    return pd.DataFrame(out)


def funnel_points(
    observed: ArrayLike,
    expected: ArrayLike,
    labels: ArrayLike,
    *,
    levels: Sequence[float] = (0.95, 0.998),
    method: str = "interpolated",
) -> pd.DataFrame:
    """Place units on the funnel: ratio O/E, limits at their own E, outside flags.

    Parameters
    ----------
    observed : array_like
        Observed counts (non-negative).
    expected : array_like
        Expected counts from the case-mix model (same length).
    labels : array_like
        One label per unit (e.g. the viewer's centre code or ``centre-2``).
    levels, method
        As in :func:`funnel_limits`.

    Returns
    -------
    pandas.DataFrame
        ``label``, ``observed``, ``expected``, ``ratio`` (NaN where E is 0), the
        limit columns of :func:`funnel_limits` and, per level, ``outside_<s>``
        (``True`` when the ratio is below the lower or above the upper limit).

    Examples
    --------
    >>> t = funnel_points([30, 10], [10.0, 10.0], ["A", "B"])
    >>> t[["label", "outside_95", "outside_998"]].values.tolist()
    [['A', True, True], ['B', False, False]]
    """
    o = np.atleast_1d(np.asarray(observed, dtype=float))
    e = _expected_array(expected)
    lab = np.atleast_1d(np.asarray(labels, dtype=object))
    if not o.shape == e.shape == lab.shape:
        raise BenchmarkInputError(
            f"observed, expected, labels: lengths differ "
            f"({o.size}, {e.size}, {lab.size})"
        )
    if np.any(~np.isfinite(o)) or np.any(o < 0):
        raise BenchmarkInputError("observed: counts must be finite and non-negative")
    limits = funnel_limits(e, levels, method=method)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(e > 0, o / np.where(e > 0, e, 1.0), np.nan)
    frame = pd.DataFrame({"label": lab, "observed": o, "expected": e, "ratio": ratio})
    frame = pd.concat([frame, limits.drop(columns="expected")], axis=1)
    for level in levels:
        s = level_suffix(float(level))
        lo, hi = frame[f"lower_{s}"].to_numpy(), frame[f"upper_{s}"].to_numpy()
        with np.errstate(invalid="ignore"):
            frame[f"outside_{s}"] = (ratio < lo) | (ratio > hi)
    return frame
