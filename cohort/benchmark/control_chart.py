r"""Individuals (XmR) control chart of a metric over time.

.. math::

    \bar x = \frac{1}{n}\sum_i x_i, \qquad MR_i = |x_i - x_{i-1}|, \qquad
    \overline{MR} = \frac{1}{n-1}\sum_{i\ge 2} MR_i, \qquad
    UCL, LCL = \bar x \pm 2.66\,\overline{MR}

where :math:`2.66 = 3/d_2` with :math:`d_2 = 1.128` for moving ranges of two.

References
----------
Montgomery DC. Introduction to Statistical Quality Control, 7th ed. Wiley 2013, §6.4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import ArrayLike

from cohort.benchmark.errors import BenchmarkInputError

__all__ = ["XMR_FACTOR", "individuals_chart"]

#: Factor of the average moving range for 3-sigma limits (3 / d2, d2 = 1.128).
XMR_FACTOR = 2.66


def individuals_chart(values: ArrayLike, dates: ArrayLike) -> pd.DataFrame:
    """Individuals chart: centre line, moving ranges, limits and out-of-limit flags.

    Points are put in date order (stable for equal dates); missing values (NaN) are
    left out before the moving ranges are taken.

    Parameters
    ----------
    values : array_like
        The metric per plan or patient (e.g. ``Heart Mean`` in Gy).
    dates : array_like
        One date (or datetime) per value.

    Returns
    -------
    pandas.DataFrame
        ``date``, ``value``, ``moving_range`` (NaN on the first point),
        ``centre_line`` (the mean), ``mr_bar``, ``ucl``, ``lcl`` and
        ``out_of_limits``. With fewer than two points the limits are NaN and no point
        is flagged.

    Examples
    --------
    >>> t = individuals_chart([10, 12, 11, 15], ["2024-01-01", "2024-01-02",
    ...                                          "2024-01-03", "2024-01-04"])
    >>> float(t["centre_line"].iloc[0]), round(float(t["ucl"].iloc[0]), 3)
    (12.0, 18.207)
    """
    x = np.atleast_1d(np.asarray(values, dtype=float))
    d = pd.to_datetime(pd.Series(np.atleast_1d(np.asarray(dates, dtype=object))))
    if x.ndim != 1 or x.size != len(d):
        raise BenchmarkInputError(f"values, dates: lengths differ ({x.size}, {len(d)})")
    if d.isna().any():
        raise BenchmarkInputError("dates: a date is missing")
    keep = np.isfinite(x)
    frame = pd.DataFrame({"date": d[keep].to_numpy(), "value": x[keep]})
    frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
    v = frame["value"].to_numpy()
    mr = np.abs(np.diff(v))
    frame["moving_range"] = np.concatenate(([np.nan], mr))[: v.size]
    centre = float(v.mean()) if v.size else np.nan
    mr_bar = float(mr.mean()) if mr.size else np.nan
    frame["centre_line"] = centre
    frame["mr_bar"] = mr_bar
    frame["ucl"] = centre + XMR_FACTOR * mr_bar
    frame["lcl"] = centre - XMR_FACTOR * mr_bar
    with np.errstate(invalid="ignore"):
        frame["out_of_limits"] = (v > frame["ucl"].to_numpy()) | (
            v < frame["lcl"].to_numpy()
        )
    return frame
