r"""Individuals control chart (Shewhart I-chart with moving-range limits).

.. math::

    \\bar{x} \\pm 2.66\\,\\overline{MR}, \\qquad
    \\overline{MR} = \\frac{1}{n-1}\\sum_{i=2}^{n} |x_i - x_{i-1}|

(Montgomery, *Introduction to Statistical Quality Control*, ch. 6; 2.66 = 3/d2 with
d2 = 1.128 for ranges of two.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = ["individuals_chart"]

_E2 = 2.66


def individuals_chart(values: Sequence[float], dates: Sequence[Any]) -> pd.DataFrame:
    """Return the I-chart of ``values`` in date order.

    Returns
    -------
    DataFrame
        ``date, value, centre_line, ucl, lcl, out_of_limits``.

    Raises
    ------
    ValueError
        With fewer than two values (no moving range) or lengths that differ.
    """
    import numpy as np
    import pandas as pd

    if len(values) != len(dates):
        raise ValueError("values and dates differ in length")
    if len(values) < 2:  # noqa: PLR2004
        raise ValueError("a control chart needs at least two values")
    df = pd.DataFrame({"date": list(dates), "value": np.asarray(values, float)})
    df = df.sort_values("date", kind="stable").reset_index(drop=True)
    centre = float(df["value"].mean())
    mr_bar = float(np.abs(np.diff(df["value"].to_numpy())).mean())
    df["centre_line"] = centre
    df["ucl"] = centre + _E2 * mr_bar
    df["lcl"] = centre - _E2 * mr_bar
    df["out_of_limits"] = (df["value"] > df["ucl"]) | (df["value"] < df["lcl"])
    return df
