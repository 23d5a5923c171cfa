"""Case-mix expected counts on a cohort simulated with known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from cohort.benchmark import (
    DOSE_ADJUSTED_LABEL,
    BenchmarkInputError,
    design_matrix,
    expected_counts,
    funnel_points,
)

FACTORS = ["age_at_rt_start", "sex", "site", "fractionation", "stage"]
SITE_EFFECT = {"breast": -0.6, "prostate": 0.0, "lung": 0.9, "head_neck": 0.6}
# Centre -> (patients, site mix breast/prostate/lung/head_neck, share hypofractionated)
CENTRES = {
    "C1": (1500, (0.4, 0.3, 0.2, 0.1), 0.5),
    "C2": (1200, (0.1, 0.1, 0.6, 0.2), 0.2),  # lung-heavy: high crude rate
    "C3": (1800, (0.5, 0.3, 0.1, 0.1), 0.7),
    "C4": (1000, (0.3, 0.3, 0.2, 0.2), 0.4),  # the outlier (odds ratio 2)
    "C5": (1400, (0.3, 0.4, 0.2, 0.1), 0.3),
    "C6": (900, (0.2, 0.2, 0.3, 0.3), 0.6),
}


def _cohort(seed: int = 7, excess: str = "C4", dose_driven: str | None = None):
    rng = np.random.default_rng(seed)
    parts = []
    for centre, (n, mix, hypo) in CENTRES.items():
        site = rng.choice(list(SITE_EFFECT), size=n, p=mix)
        dose = rng.normal(20.0, 4.0, n) + (6.0 if centre == dose_driven else 0.0)
        parts.append(
            pd.DataFrame(
                {
                    "centre": centre,
                    "age_at_rt_start": rng.normal(66, 9, n).round(),
                    "sex": rng.choice(["F", "M"], size=n),
                    "site": site,
                    "fractionation": np.where(
                        rng.uniform(size=n) < hypo, "hypo", "conventional"
                    ),
                    "stage": None,  # not recorded at any centre
                    "heart_mean_gy": dose,
                }
            )
        )
    df = pd.concat(parts, ignore_index=True)
    eta = (
        -1.8
        + 0.03 * (df["age_at_rt_start"] - 66)
        + 0.3 * (df["sex"] == "M")
        + df["site"].map(SITE_EFFECT)
        + 0.25 * (df["fractionation"] == "hypo")
        + 0.08 * (df["heart_mean_gy"] - 20.0)
        + np.log(2.0) * (df["centre"] == excess)
    )
    df["grade2_12m"] = (rng.uniform(size=len(df)) < expit(eta)).astype(int)
    return df


def test_outlier_centre_is_found_outside_998_and_others_inside():
    df = _cohort()
    exp = expected_counts(df, "grade2_12m", FACTORS)
    assert exp.attrs["factors_dropped"] == ["stage"]
    # Logistic MLE with an intercept: predicted probabilities sum to the events.
    assert exp["expected"].sum() == pytest.approx(exp["observed"].sum(), rel=1e-5)
    assert exp["observed"].tolist() == (
        df.groupby("centre")["grade2_12m"].sum().tolist()
    )
    pts = funnel_points(exp["observed"], exp["expected"], exp["centre"])
    flagged = dict(zip(pts["label"], pts["outside_998"], strict=True))
    assert flagged == {c: c == "C4" for c in CENTRES}
    assert pts.set_index("label").loc["C4", "ratio"] > 1.3
    # C2's crude rate is the highest of the others, but its O/E is unremarkable.
    crude = df.groupby("centre")["grade2_12m"].mean().drop("C4")
    assert crude.idxmax() == "C2"
    assert not exp.set_index("centre").loc["C2", "dose_adjusted"]


def test_dose_adjustment_hides_a_difference_in_practice():
    df = _cohort(seed=8, excess="none", dose_driven="C5")
    plain = expected_counts(df, "grade2_12m", FACTORS)
    with_dose = expected_counts(df, "grade2_12m", FACTORS, dose_column="heart_mean_gy")
    p1 = funnel_points(plain["observed"], plain["expected"], plain["centre"])
    p2 = funnel_points(
        with_dose["observed"], with_dose["expected"], with_dose["centre"]
    )
    assert p1.set_index("label").loc["C5", "outside_998"]
    assert not p2["outside_998"].any()
    assert with_dose["dose_adjusted"].all()
    assert (with_dose["adjustment"] == DOSE_ADJUSTED_LABEL).all()
    assert "hides differences in practice" in DOSE_ADJUSTED_LABEL


def test_design_matrix_one_hot_and_missing_level():
    d = pd.DataFrame(
        {"age": [60.0, 70.0, 80.0], "stage": ["I", None, "II"], "x": [1, 1, 1]}
    )
    m = design_matrix(d, ["age", "stage", "x"])
    assert list(m.columns) == ["age", "stage=II", "stage=missing"]
    assert m["stage=missing"].tolist() == [0.0, 1.0, 0.0]
    assert m.attrs["dropped"] == ["x"]


def test_bad_input_is_named():
    d = pd.DataFrame({"centre": ["A", "B"], "y": [1, 2], "age": [50.0, np.nan]})
    with pytest.raises(BenchmarkInputError, match="y"):
        expected_counts(d, "y", ["age"])
    d["y"] = [1, 0]
    with pytest.raises(BenchmarkInputError, match="'age' has missing"):
        expected_counts(d, "y", ["age"])
    with pytest.raises(BenchmarkInputError, match="'sex'"):
        expected_counts(d, "y", ["sex"])
