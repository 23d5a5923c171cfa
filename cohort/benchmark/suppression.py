"""Small-cell suppression with complementary suppression against subtraction.

Primary suppression withholds every count below ``min_count`` (5: "fewer than 5
patients"), zeros included unless ``keep_zero``. A withheld cell could still be
recovered by subtraction when it is the only withheld cell of a line whose total is
shown, so complementary suppression then also withholds the next-smallest shown cell
of that line (preferring one whose crossing line already has a withheld cell, so
fewer cells are lost), or the total itself when no other cell is left. Two kinds of
line:

* a **row**: the ``count_columns`` of one row add up to its ``row_total`` column;
* a **column** within a block of rows (rows sharing ``group_columns``): the rows add
  up to the block's total row, the row whose ``label_column`` is ``total_label``.

The passes are repeated until nothing changes. Derived values (rates, percentages)
listed in ``derived`` are withheld with any count they are computed from.

Totals shown anywhere else on the page must be in the same table to be protected.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import NDArray

from cohort.benchmark.errors import BenchmarkInputError

__all__ = ["MIN_CELL_COUNT", "suppress_small_cells"]

#: Smallest count shown in a view that shows other centres.
MIN_CELL_COUNT = 5

BoolArray = NDArray[np.bool_]
_MAX_PASSES = 100


def _protect_lines(
    values: NDArray[np.float64],
    hidden: BoolArray,
    cells: list[NDArray[np.intp]],
    totals: list[tuple[int, int] | None],
    axis_cells: str,
) -> bool:
    """Withhold one more cell on each line with exactly one hidden cell.

    Returns whether anything changed.
    """
    changed = False
    for line, total in zip(cells, totals, strict=True):
        if total is None or hidden[total]:
            continue
        if axis_cells == "row":
            r = line[0]
            cols = line[1:]
            mask, vals = hidden[r, cols], values[r, cols]
            coords = [(int(r), int(c)) for c in cols]
        else:
            c = line[0]
            rows = line[1:]
            mask, vals = hidden[rows, c], values[rows, c]
            coords = [(int(r), int(c)) for r in rows]
        if int(mask.sum()) != 1:
            continue
        shown = np.flatnonzero(~mask & np.isfinite(vals))
        if shown.size:
            # Prefer a cell whose crossing line already has a withheld cell (so that
            # line needs no further complement), then the smallest.
            cross = np.array(
                [
                    hidden[coords[k][0], :].any()
                    if axis_cells == "column"
                    else hidden[:, coords[k][1]].any()
                    for k in shown
                ]
            )
            order = np.lexsort((vals[shown], ~cross))
            hidden[coords[shown[order[0]]]] = True
        else:
            hidden[total] = True
        changed = True
    return changed


def suppress_small_cells(
    df: pd.DataFrame,
    count_columns: Sequence[str],
    min_count: int = MIN_CELL_COUNT,
    group_columns: Sequence[str] = (),
    *,
    row_total: str | None = None,
    label_column: str | None = None,
    total_label: Hashable = "Total",
    derived: Mapping[str, Sequence[str]] | None = None,
    keep_zero: bool = False,
) -> pd.DataFrame:
    """Withhold small counts, the cells that would reveal them, and derived rates.

    Parameters
    ----------
    df : pandas.DataFrame
        The table as it will be shown (e.g. one row per centre and timepoint).
    count_columns : sequence of str
        Count columns (patients) subject to suppression.
    min_count : int
        Counts below this are withheld (5).
    group_columns : sequence of str
        Columns whose values define the blocks of rows that add up to a total row
        (e.g. ``("timepoint",)``); empty: the whole table is one block.
    row_total : str or None
        Column holding the sum of ``count_columns`` on each row, if shown.
    label_column : str or None
        Column naming each row's unit (e.g. ``"centre"``); a row where it equals
        ``total_label`` is the block's total row.
    total_label : hashable
        Label of total rows.
    derived : mapping of str to sequence of str, optional
        Derived column -> the count columns it is computed from (e.g.
        ``{"consent_rate": ["consented", "approached"]}``).
    keep_zero : bool
        Show zero counts (default: a zero is withheld like any count below 5).

    Returns
    -------
    pandas.DataFrame
        A copy; withheld cells are ``None`` (those columns become ``object``).
        ``attrs["suppressed"]`` is the boolean mask of withheld cells over the
        count, total and derived columns.

    Examples
    --------
    >>> t = pd.DataFrame({"centre": ["A", "B", "C"], "yes": [3, 10, 12],
    ...                   "no": [20, 9, 30], "n": [23, 19, 42]})
    >>> out = suppress_small_cells(t, ["yes", "no"], row_total="n")
    >>> out[["yes", "no", "n"]].values.tolist()
    [[None, None, 23], [10, 9, 19], [12, 30, 42]]
    """
    derived = dict(derived or {})
    value_cols = [*count_columns, *([row_total] if row_total else [])]
    needed = [*value_cols, *group_columns, *([label_column] if label_column else [])]
    for col in [*needed, *derived, *(c for v in derived.values() for c in v)]:
        if col not in df.columns:
            raise BenchmarkInputError(f"suppress_small_cells: no column {col!r}")
    values = df[value_cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    small = values < min_count
    if keep_zero:
        small &= values != 0
    hidden = small & np.isfinite(values)
    n_rows, n_counts = len(df), len(count_columns)
    row_lines, row_totals = _row_lines(n_rows, n_counts, row_total is not None)
    col_lines, col_totals = _column_lines(
        df, len(value_cols), group_columns, label_column, total_label
    )
    for _ in range(_MAX_PASSES):
        a = _protect_lines(values, hidden, row_lines, row_totals, "row")
        b = _protect_lines(values, hidden, col_lines, col_totals, "column")
        if not (a or b):
            break
    out = df.copy()
    mask = pd.DataFrame(hidden, columns=value_cols, index=df.index)
    for name, sources in derived.items():
        unknown = [s for s in sources if s not in mask.columns]
        if unknown:
            raise BenchmarkInputError(
                f"derived: {name!r} depends on {unknown}, not a count column"
            )
        mask[name] = mask[list(sources)].any(axis=1)
    for col in mask.columns:
        out[col] = out[col].astype(object).where(~mask[col], None)
    out.attrs["suppressed"] = mask
    return out


def _row_lines(
    n_rows: int, n_counts: int, has_total: bool
) -> tuple[list[NDArray[np.intp]], list[tuple[int, int] | None]]:
    lines = [np.r_[r, np.arange(n_counts)].astype(np.intp) for r in range(n_rows)]
    totals: list[tuple[int, int] | None] = [
        (r, n_counts) if has_total else None for r in range(n_rows)
    ]
    return lines, totals


def _column_lines(
    df: pd.DataFrame,
    n_cols: int,
    group_columns: Sequence[str],
    label_column: str | None,
    total_label: Hashable,
) -> tuple[list[NDArray[np.intp]], list[tuple[int, int] | None]]:
    if label_column is None:
        return [], []
    is_total = (df[label_column] == total_label).to_numpy()
    blocks = (
        df.groupby(list(group_columns), sort=False, dropna=False).indices
        if group_columns
        else {None: np.arange(len(df))}
    )
    lines: list[NDArray[np.intp]] = []
    totals: list[tuple[int, int] | None] = []
    for positions in blocks.values():
        pos = np.asarray(positions, dtype=np.intp)
        total_rows = pos[is_total[pos]]
        if total_rows.size > 1:
            raise BenchmarkInputError(
                f"{label_column}: more than one {total_label!r} row in a block"
            )
        members = pos[~is_total[pos]]
        for c in range(n_cols):
            lines.append(np.r_[c, members].astype(np.intp))
            totals.append((int(total_rows[0]), c) if total_rows.size else None)
    return lines, totals
