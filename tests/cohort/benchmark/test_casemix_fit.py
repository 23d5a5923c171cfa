"""The case-mix model's Newton fit against scikit-learn's unpenalised fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from cohort.benchmark import casemix, expected_counts
from cohort.benchmark.casemix import CaseMixFitWarning, logistic_fit


def _sklearn(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    model = LogisticRegression(C=np.inf, max_iter=20000, tol=1e-12).fit(x, y)
    return np.asarray(model.predict_proba(x)[:, 1])


def _random(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(100, 3000))
    x = np.column_stack([
        rng.normal(size=(n, 3)),
        rng.uniform(size=n) < 0.3,
        rng.uniform(size=n) < 0.1,
    ]).astype(float)  # fmt: skip
    eta = x @ rng.normal(size=x.shape[1]) - 1.0
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    return (x - x.mean(axis=0)) / x.std(axis=0), y


@pytest.mark.parametrize("seed", range(6))
def test_probabilities_equal_sklearn_and_add_up_to_events(seed: int) -> None:
    x, y = _random(seed)
    p = logistic_fit(x, y)
    assert np.max(np.abs(p - _sklearn(x, y))) < 1e-6
    # The intercept's score equation: the fitted probabilities sum to the events.
    assert p.sum() == pytest.approx(y.sum(), abs=1e-9)


def test_collinear_columns_give_the_fit_without_the_copy() -> None:
    x, y = _random(11)
    doubled = np.column_stack([x, x[:, 0]])
    assert np.max(np.abs(logistic_fit(doubled, y) - logistic_fit(x, y))) < 1e-9


def test_quasi_separation_takes_the_limit() -> None:
    # Every patient with x = 1 has the event: their probability tends to 1 and
    # the others' to their event rate.
    x = np.array([[0.0]] * 6 + [[1.0]] * 3)
    y = np.array([0, 1, 0, 0, 1, 0, 1, 1, 1])
    p = logistic_fit(x, y)
    assert p[6:] == pytest.approx(1.0, abs=1e-9)
    assert p[:6] == pytest.approx(2 / 6, abs=1e-9)


def test_unsettled_fit_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(casemix, "_MAX_ITER", 1)
    x, y = _random(3)
    with pytest.warns(CaseMixFitWarning, match="did not settle"):
        logistic_fit(x, y)


def test_expected_counts_equal_sklearn_on_a_cohort() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    df = pd.DataFrame({
        "centre": rng.choice(["A", "B", "C", "D"], size=n),
        "age": rng.normal(66, 9, n).round(),
        "sex": rng.choice(["F", "M"], size=n),
        "site": rng.choice(["breast", "lung", "prostate"], size=n),
    })  # fmt: skip
    eta = -1.5 + 0.03 * (df["age"] - 66) + 0.8 * (df["site"] == "lung")
    df["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    got = expected_counts(df, "y", ["age", "sex", "site"])
    x = casemix.design_matrix(df, ["age", "sex", "site"]).to_numpy(dtype=float)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = pd.Series(_sklearn(x, df["y"].to_numpy())).groupby(df["centre"]).sum()
    assert got["expected"].to_numpy() == pytest.approx(want.to_numpy(), rel=1e-6)
    assert got["expected"].sum() == pytest.approx(df["y"].sum(), abs=1e-9)
