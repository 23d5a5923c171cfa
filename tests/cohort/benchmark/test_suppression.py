"""Small-cell suppression: primary, complementary by row and by column, derived."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohort.benchmark import BenchmarkInputError, suppress_small_cells


def _hidden(out: pd.DataFrame, cols: list[str]) -> list[list[bool]]:
    return out[cols].isna().to_numpy().tolist()


def test_row_total_forces_a_second_cell():
    t = pd.DataFrame(
        {"centre": ["A", "B"], "yes": [3, 10], "no": [20, 9], "n": [23, 19]}
    )
    out = suppress_small_cells(t, ["yes", "no"], row_total="n")
    # A.yes is small; with n shown, A.no = 20 would give it away: hidden too.
    assert _hidden(out, ["yes", "no", "n"]) == [[True, True, False], [False] * 3]


def test_single_cell_row_suppresses_the_total():
    t = pd.DataFrame({"centre": ["A"], "only": [3], "n": [3]})
    out = suppress_small_cells(t, ["only"], row_total="n")
    assert _hidden(out, ["only", "n"]) == [[True, True]]


def test_column_total_and_next_smallest_cell():
    t = pd.DataFrame(
        {
            "centre": ["A", "B", "C", "Total"],
            "yes": [3, 10, 12, 25],
            "no": [20, 9, 30, 59],
            "n": [23, 19, 42, 84],
        }
    )
    t["rate"] = t["yes"] / t["n"]
    out = suppress_small_cells(
        t,
        ["yes", "no"],
        row_total="n",
        label_column="centre",
        derived={"rate": ["yes", "n"]},
    )
    assert _hidden(out, ["yes", "no", "n", "rate"]) == [
        [True, True, False, True],
        [True, True, False, True],  # B.yes (10 < 12) and B.no (9 < 30) complement A
        [False, False, False, False],
        [False, False, False, False],
    ]
    assert out["rate"].iloc[2] == 12 / 42
    assert out.attrs["suppressed"]["rate"].tolist() == [True, True, False, False]


def _determined(hidden: list[tuple[int, int]], n_rows: int) -> list[bool]:
    """Which hidden cells the published sums determine (linear-algebra attack).

    Unknowns: the hidden cells of an (n_rows x 3) block [done, missed, n] whose last
    row is the total. Equations: done + missed = n on each row, rows 0..k-1 sum to the
    total row in each column. A hidden cell is determined exactly when its unit vector
    lies in the row space of the equations restricted to the unknowns.
    """
    eqs = []
    for r in range(n_rows):
        eqs.append({(r, 0): 1, (r, 1): 1, (r, 2): -1})
    for c in range(3):
        eq = {(r, c): 1 for r in range(n_rows - 1)}
        eq[(n_rows - 1, c)] = -1
        eqs.append(eq)
    a = np.array([[eq.get(cell, 0) for cell in hidden] for eq in eqs], dtype=float)
    rank = np.linalg.matrix_rank(a)
    out = []
    for k in range(len(hidden)):
        unit = np.zeros((1, len(hidden)))
        unit[0, k] = 1.0
        out.append(np.linalg.matrix_rank(np.vstack([a, unit])) == rank)
    return out


def test_no_hidden_cell_can_be_recovered_by_subtraction():
    t = pd.DataFrame(
        {
            "timepoint": ["3m"] * 4 + ["6m"] * 4,
            "centre": ["A", "B", "C", "Total"] * 2,
            "done": [2, 7, 15, 24, 12, 0, 9, 21],
            "missed": [8, 6, 5, 19, 3, 11, 14, 28],
        }
    )
    t["n"] = t["done"] + t["missed"]
    cols = ["done", "missed", "n"]
    out = suppress_small_cells(
        t,
        ["done", "missed"],
        row_total="n",
        group_columns=["timepoint"],
        label_column="centre",
    )
    shown = out[cols].notna().to_numpy()
    for start in (0, 4):
        block = shown[start : start + 4]
        hidden = [(r, c) for r in range(4) for c in range(3) if not block[r, c]]
        assert hidden
        assert not any(_determined(hidden, 4))
    # The small cells themselves are hidden, zeros included.
    assert out["done"].iloc[0] is None and out["done"].iloc[5] is None
    # Complements chosen to close 2 x 2 patterns: centre C stays visible.
    assert out.loc[2, ["done", "missed"]].tolist() == [15, 5]
    assert out.loc[6, ["done", "missed"]].tolist() == [9, 14]


def test_attack_detects_a_table_without_complementary_suppression():
    # The check above is not vacuous: hiding only the small cell is recoverable.
    assert _determined([(0, 0)], 4) == [True]


def test_keep_zero_and_unknown_columns():
    t = pd.DataFrame({"a": [0, 7], "b": [9, 8]})
    assert suppress_small_cells(t, ["a", "b"], keep_zero=True)["a"].iloc[0] == 0
    assert suppress_small_cells(t, ["a", "b"])["a"].iloc[0] is None
    with pytest.raises(BenchmarkInputError, match="'c'"):
        suppress_small_cells(t, ["c"])
