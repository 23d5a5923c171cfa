"""Small-cell suppression of counts shown beside other centres.

A count below ``min_count`` (but above zero) is blanked; when a group then has
exactly one blanked cell, the next smallest cell of the group is blanked too, so the
small cell cannot be recovered from the group's total by subtraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = ["suppress_small_cells"]


def suppress_small_cells(
    df: pd.DataFrame,
    count_columns: Sequence[str],
    min_count: int = 5,
    group_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return a copy with counts in ``(0, min_count)`` blanked (NaN).

    Parameters
    ----------
    df
        One row per cell group (e.g. per centre), counts in ``count_columns``.
    count_columns
        Columns holding counts of persons.
    min_count
        Smallest count shown.
    group_columns
        When given, the complementary suppression runs within each group of these
        columns over the rows; otherwise within each row over ``count_columns``.
    """
    import numpy as np

    out = df.copy()
    cols = list(count_columns)
    for c in cols:
        out[c] = out[c].astype("float64")
    small = (out[cols] > 0) & (out[cols] < min_count)
    out[cols] = out[cols].mask(small)
    if group_columns:
        for _key, idx in out.groupby(list(group_columns)).groups.items():
            for c in cols:
                cells = out.loc[idx, c]
                _second(out, cells, c, small.loc[idx, c])
    else:
        for i in out.index:
            row = out.loc[i, cols]
            if int(small.loc[i].sum()) == 1:
                rest = row.dropna()
                rest = rest[rest > 0]
                if len(rest) > 0:
                    out.loc[i, rest.astype(float).idxmin()] = np.nan
    return out


def _second(out: pd.DataFrame, cells: pd.Series, column: str, small: pd.Series) -> None:
    import numpy as np

    if int(small.sum()) != 1:
        return
    rest = cells.dropna()
    rest = rest[rest > 0]
    if len(rest) > 0:
        out.loc[rest.astype(float).idxmin(), column] = np.nan
