"""PROM trajectories and deterioration shares against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cohort.benchmark import BenchmarkInputError, deterioration_share, trajectory


def _scores() -> pd.DataFrame:
    rows = [
        # pseudonym, timepoint, scale, score
        ("p1", "baseline", "PF2", 80.0),
        ("p1", "3m", "PF2", 60.0),
        ("p2", "baseline", "PF2", 90.0),
        ("p2", "3m", "PF2", 85.0),
        ("p3", "baseline", "PF2", 70.0),
        ("p3", "3m", "PF2", 60.0),
        ("p1", "baseline", "QL2", 50.0),
        ("p1", "3m", "QL2", 45.0),
        ("p2", "baseline", "QL2", 75.0),
        ("p2", "3m", "QL2", 58.3),
        ("p1", "baseline", "FA", 22.2),
        ("p1", "3m", "FA", 33.3),
        ("p2", "baseline", "FA", 33.3),
        ("p2", "3m", "FA", 11.1),
        ("p3", "baseline", "FA", 0.0),
        ("p3", "3m", "FA", np.nan),
        ("p4", "3m", "FA", 44.4),
    ]
    return pd.DataFrame(rows, columns=["pseudonym", "timepoint", "scale", "score"])


def test_trajectory_mean_and_t_interval():
    t = trajectory(_scores()).set_index(["timepoint", "scale"])
    pf = np.array([60.0, 85.0, 60.0])
    row = t.loc[("3m", "PF2")]
    assert row["n"] == 3 and row["mean"] == pytest.approx(pf.mean())
    lo, hi = stats.t.interval(0.95, 2, loc=pf.mean(), scale=stats.sem(pf))
    assert row["lower_95"] == pytest.approx(lo) and row["upper_95"] == pytest.approx(hi)
    # Missing scores are left out: FA at 3m has p1, p2, p4.
    assert t.loc[("3m", "FA"), "n"] == 3
    assert t.loc[("3m", "FA"), "mean"] == pytest.approx((33.3 + 11.1 + 44.4) / 3)


def test_trajectory_by_centre_and_single_patient_has_no_interval():
    d = _scores().assign(centre=lambda f: np.where(f["pseudonym"] == "p1", "A", "B"))
    t = trajectory(d, by=("centre",)).set_index(["centre", "timepoint", "scale"])
    assert t.loc[("A", "3m", "PF2"), "n"] == 1
    assert np.isnan(t.loc[("A", "3m", "PF2"), "lower_95"])


def test_deterioration_follows_the_qlq_c30_rule():
    # PF2 (functional): falls 20, 5, 10 -> 2 of 3 deteriorated (fall >= 10).
    # QL2 (global health): falls 5, 16.7 -> 1 of 2.
    # FA (symptom): rises 11.1, -22.2; p3 has no 3m score; p4 no baseline -> 1 of 2.
    t = deterioration_share(_scores()).set_index(["timepoint", "scale"])
    assert t.loc[("3m", "PF2"), ["n", "n_deteriorated"]].tolist() == [3, 2]
    assert t.loc[("3m", "QL2"), ["n", "n_deteriorated"]].tolist() == [2, 1]
    assert t.loc[("3m", "FA"), ["n", "n_deteriorated"]].tolist() == [2, 1]
    assert t.loc[("3m", "PF2"), "share"] == pytest.approx(2 / 3)
    assert "baseline" not in t.index.get_level_values("timepoint")


def test_unknown_scale_duplicates_and_missing_columns_are_named():
    d = _scores()
    with pytest.raises(BenchmarkInputError, match="XX"):
        deterioration_share(pd.concat([d, d.iloc[[0]].assign(scale="XX")]))
    with pytest.raises(BenchmarkInputError, match="more than one score"):
        deterioration_share(pd.concat([d, d.iloc[[0]]]))
    with pytest.raises(BenchmarkInputError, match="missing column"):
        trajectory(d.drop(columns="score"))
