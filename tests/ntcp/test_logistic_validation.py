"""Tests of logistic models and validation measures against independent computations."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from ntcp.dose_metrics import dose_metric
from ntcp.errors import FewEventsWarning, ModelSpecError, NonIdentifiableError
from ntcp.lkb import LKBModel
from ntcp.logistic import LogisticDoseModel, MultivariableLogisticModel
from ntcp.simulate import simulate_lkb_cohort
from ntcp.validation import (
    auc,
    bootstrap_optimism,
    brier_score,
    calibration_curve,
    calibration_in_the_large,
    calibration_slope,
)


def _logistic_data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"dose_gy": rng.uniform(0, 60, n), "age": rng.normal(65, 10, n)})
    eta = -4.0 + 0.08 * x["dose_gy"] + 0.02 * (x["age"] - 65)
    y = (rng.uniform(size=n) < expit(eta)).astype(int)
    return x, y


def test_unpenalised_fit_matches_sklearn_with_c_inf():
    x, y = _logistic_data()
    ours = MultivariableLogisticModel().fit(x, y)
    ref = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10).fit(x, y)
    np.testing.assert_allclose(ours.params_["intercept"], ref.intercept_[0], rtol=1e-4)
    np.testing.assert_allclose(
        ours.params_[["dose_gy", "age"]], ref.coef_[0], rtol=1e-4
    )
    lo, hi = ours.ci95_["dose_gy"]
    assert lo < 0.08 < hi


def test_penalty_shrinks_coefficients():
    x, y = _logistic_data(300, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewEventsWarning)
        free = MultivariableLogisticModel().fit(x, y)
        ridge = MultivariableLogisticModel(penalty=50.0).fit(x, y)
    assert abs(ridge.params_["dose_gy"]) < abs(free.params_["dose_gy"])


def test_separation_and_constant_predictor_raise():
    x = pd.DataFrame({"d": np.arange(40.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewEventsWarning)
        with pytest.raises(NonIdentifiableError, match="separated"):
            MultivariableLogisticModel().fit(x, (x["d"] > 20).astype(int))
        with pytest.raises(NonIdentifiableError, match="constant"):
            MultivariableLogisticModel().fit(
                pd.DataFrame({"d": np.ones(40)}), [0, 1] * 20
            )


def test_dose_metrics_hand_worked():
    dose = np.array([[5.0, 15.0, 25.0, 35.0, 0.0]])
    vol = np.array([[0.4, 0.3, 0.2, 0.1, 0.0]])
    assert dose_metric(dose, vol, "Mean[Gy]")[0] == pytest.approx(2 + 4.5 + 5 + 3.5)
    assert dose_metric(dose, vol, "V20Gy[%]")[0] == pytest.approx(30.0)
    assert dose_metric(dose, vol, "Max[Gy]")[0] == 35.0
    assert dose_metric(dose, vol, "Min[Gy]")[0] == 5.0
    assert dose_metric(dose, vol, "D10%[Gy]")[0] == 35.0
    assert dose_metric(dose, vol, "D30%[Gy]")[0] == 25.0
    with pytest.raises(ModelSpecError):
        dose_metric(dose, vol, "V20[%]")


def test_logistic_geud_estimates_n_and_covers_it():
    c = simulate_lkb_cohort(3000, 30.0, 0.25, 0.5, seed=21)
    model = LogisticDoseModel().fit(c.dvhs, c.outcome)
    lo, hi = model.n_ci95_
    # Logistic and probit differ only in link; the volume effect is the same.
    assert lo < 0.5 < hi
    assert model.params_["geud_gy"] > 0


def test_logistic_metric_with_covariate():
    c = simulate_lkb_cohort(1500, 30.0, 0.25, 1.0, seed=22)
    rng = np.random.default_rng(5)
    cov = pd.DataFrame({"noise": rng.normal(size=1500)})
    model = LogisticDoseModel(metric="Mean[Gy]").fit(c.dvhs, c.outcome, covariates=cov)
    assert list(model.params_.index) == ["intercept", "Mean[Gy]", "noise"]
    lo, hi = model.ci95_["noise"]
    assert lo < 0 < hi
    p = model.predict_ntcp(c.dvhs, covariates=cov)
    assert p.shape == (1500,)


def test_auc_and_brier_match_sklearn():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p).astype(int)
    p[:50] = 0.5  # ties
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_calibration_measures_recover_known_miscalibration():
    rng = np.random.default_rng(4)
    lp = rng.normal(0, 1.5, 40_000)
    y = (rng.uniform(size=lp.size) < expit(lp)).astype(int)
    # Predictions with half the true slope and shifted by -1: slope 2, intercept ~ +?
    p_bad = expit(-1.0 + 0.5 * lp)
    assert calibration_slope(y, p_bad) == pytest.approx(2.0, abs=0.06)
    assert calibration_slope(y, expit(lp)) == pytest.approx(1.0, abs=0.04)
    assert calibration_in_the_large(y, expit(lp)) == pytest.approx(0.0, abs=0.03)
    assert calibration_in_the_large(y, expit(lp - 0.7)) == pytest.approx(0.7, abs=0.05)
    curve = calibration_curve(y, expit(lp))
    ok = np.isfinite(curve.observed)
    np.testing.assert_allclose(curve.observed[ok], curve.predicted[ok], atol=0.03)
    np.testing.assert_allclose(curve.group_observed, curve.group_predicted, atol=0.03)


def test_bootstrap_optimism_is_positive_for_overfitted_model_and_seeded():
    rng = np.random.default_rng(6)
    n = 120
    x = pd.DataFrame(rng.normal(size=(n, 8)), columns=[f"x{i}" for i in range(8)])
    y = (rng.uniform(size=n) < expit(0.8 * x["x0"])).astype(int)

    def fit_predict(train):
        m = MultivariableLogisticModel().fit(x.iloc[train], y.iloc[train])
        return lambda idx: m.predict_ntcp(x.iloc[idx])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewEventsWarning)
        r1 = bootstrap_optimism(fit_predict, y, n_bootstrap=40, seed=7)
        r2 = bootstrap_optimism(fit_predict, y, n_bootstrap=40, seed=7)
    assert r1.optimism["auc"] > 0
    assert r1.corrected["calibration_slope"] < 1.0
    assert r1.corrected == r2.corrected


def test_few_events_warns():
    c = simulate_lkb_cohort(600, 30.0, 0.25, 0.5, seed=9)
    events = np.flatnonzero(c.outcome == 1)[:12]
    others = np.flatnonzero(c.outcome == 0)[:288]
    sub = np.concatenate((events, others))
    with (
        pytest.warns(FewEventsWarning, match=r"events per parameter 4\.0"),
        contextlib.suppress(NonIdentifiableError),
    ):
        LKBModel(profile_ci=False).fit(c.dvhs.take(sub), c.outcome[sub])
