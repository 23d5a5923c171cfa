"""Profile-likelihood intervals of logistic coefficients against a brute-force grid."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import chi2

from ntcp.cohort_csv import CohortTable
from ntcp.errors import FewEventsWarning
from ntcp.logistic import LogisticDoseModel, MultivariableLogisticModel
from ntcp.report import build_report, render_html, render_markdown
from ntcp.simulate import simulate_lkb_cohort
from ntcp.workflow import fit_cohort

DROP = chi2.ppf(0.95, 1) / 2


def _small_data(n=70, seed=3):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"dose_gy": rng.uniform(10, 70, n), "age": rng.normal(65, 8, n)})
    eta = -3.0 + 0.06 * x["dose_gy"] + 0.03 * (x["age"] - 65)
    y = (rng.uniform(size=n) < expit(eta)).astype(int).to_numpy()
    return x, y


def _negloglik(beta, design, y):
    eta = design @ beta
    return float(np.sum(np.logaddexp(0.0, eta) - y * eta))


def _brute_force_interval(design, y, j, beta_hat, se):
    """Grid of the likelihood-ratio statistic, other coefficients by BFGS."""
    ll_hat = -_negloglik(beta_hat, design, y)
    others = [k for k in range(design.shape[1]) if k != j]

    def profile(b):
        res = minimize(
            lambda g: _negloglik(np.insert(g, j, b), design, y),
            np.delete(beta_hat, j),
            method="BFGS",
            options={"gtol": 1e-9},
        )
        assert res.success or res.fun < 1e9
        return ll_hat - (-res.fun)

    ends = []
    for sign in (-1.0, 1.0):
        grid = beta_hat[j] + sign * np.linspace(0.0, 4.0 * se, 41)
        lr = np.array([profile(b) for b in grid])
        k = int(np.flatnonzero(lr > DROP)[0])
        fine = np.linspace(grid[k - 1], grid[k], 21)
        lr_fine = np.array([profile(b) for b in fine])
        m = int(np.flatnonzero(lr_fine > DROP)[0])
        # Linear interpolation of the LR statistic between the last two grid points.
        t = (DROP - lr_fine[m - 1]) / (lr_fine[m] - lr_fine[m - 1])
        ends.append(fine[m - 1] + t * (fine[m] - fine[m - 1]))
    assert len(others) == design.shape[1] - 1
    return ends[0], ends[1]


def test_profile_intervals_match_brute_force_grid():
    x, y = _small_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewEventsWarning)
        model = MultivariableLogisticModel().fit(x, y)
    design = np.column_stack((np.ones(len(x)), x.to_numpy()))
    beta = model.params_.to_numpy()
    se = model.summary_["se (Wald)"].to_numpy()
    for j, name in enumerate(model.params_.index):
        lo, hi = _brute_force_interval(design, y, j, beta, se[j])
        got_lo, got_hi = model.profile_ci95_[name]
        assert got_lo == pytest.approx(lo, abs=2e-4 * se[j])
        assert got_hi == pytest.approx(hi, abs=2e-4 * se[j])
    row = model.summary_.loc["dose_gy"]
    assert row["lower 95% (profile)"] == model.profile_ci95_["dose_gy"][0]
    # With few events the profile interval is not the symmetric Wald interval.
    wald_lo, _ = model.ci95_["dose_gy"]
    prof_lo, prof_hi = model.profile_ci95_["dose_gy"]
    assert abs((prof_hi - beta[1]) - (beta[1] - prof_lo)) > 1e-3 * se[1]
    assert wald_lo != pytest.approx(prof_lo, abs=1e-4)


def test_profile_close_to_wald_in_a_large_sample():
    rng = np.random.default_rng(9)
    x = pd.DataFrame({"d": rng.normal(0, 1, 20_000)})
    y = (rng.uniform(size=20_000) < expit(-0.5 + 0.4 * x["d"])).astype(int)
    model = MultivariableLogisticModel().fit(x, y)
    for name in ("intercept", "d"):
        (wl, wh), (pl, ph) = model.ci95_[name], model.profile_ci95_[name]
        width = wh - wl
        assert pl == pytest.approx(wl, abs=0.02 * width)
        assert ph == pytest.approx(wh, abs=0.02 * width)


def test_penalised_and_disabled_fits_have_no_profile_interval():
    x, y = _small_data(300, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewEventsWarning)
        ridge = MultivariableLogisticModel(penalty=5.0).fit(x, y)
        off = MultivariableLogisticModel(profile_ci=False).fit(x, y)
    assert ridge.profile_ci95_["dose_gy"] == (None, None)
    assert off.profile_ci95_["age"] == (None, None)


def test_fit_result_and_report_show_wald_and_profile():
    c = simulate_lkb_cohort(400, 30.0, 0.3, 1.0, seed=5)
    table = CohortTable(
        [f"p{i}" for i in range(400)], c.dvhs, c.outcome, pd.DataFrame(), "0" * 64
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewEventsWarning)
        result, p, dose, label = fit_cohort(table, "logistic", metric="Mean[Gy]")
        direct = LogisticDoseModel(metric="Mean[Gy]").fit(c.dvhs, c.outcome)
    par = result["parameters"]["Mean[Gy]"]
    assert par["ci95"] == par["ci95_wald"] == list(direct.ci95_["Mean[Gy]"])
    assert par["ci95_profile"] == list(direct.profile_ci95_["Mean[Gy]"])
    report = build_report(result, c.outcome, p, dose, label)
    rows = {r["parameter"]: r for r in report["tripod_ai"]["parameter_intervals"]}
    assert rows["Mean[Gy]"]["profile_95"] == par["ci95_profile"]
    md = render_markdown(report)
    lo, hi = par["ci95_profile"]
    assert f"{lo:.4g} .. {hi:.4g}" in md
    assert "profile-likelihood 95%" in render_html(report)
