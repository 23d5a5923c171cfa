"""Tests of the LKB estimator against independently computed truth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import log_ndtr, ndtr

from ntcp._lkb_likelihood import LkbLikelihood
from ntcp.errors import (
    DegenerateOutcomeError,
    DvhValidationError,
    FewEventsWarning,
    MissingFractionsError,
    NonIdentifiableError,
)
from ntcp.geud import DVHSet, GeudKernel
from ntcp.lkb import LKBModel
from ntcp.simulate import simulate_lkb_cohort

TRUE = {"td50_gy": 30.0, "m": 0.25, "n": 0.5}


def _naive_loglik(dose, vol, y, t, m, n):  # noqa: PLR0917
    """Straightforward LKB log-likelihood, written independently of ntcp."""
    out = 0.0
    for d, v, yy in zip(dose, vol, y, strict=True):
        keep = v > 0
        g = np.sum(v[keep] * d[keep] ** (1.0 / n)) ** n
        p = ndtr((g - t) / (m * t))
        out += np.log(p) if yy else np.log1p(-p)
    return out


@pytest.fixture(scope="module")
def cohort_eqd2():
    return simulate_lkb_cohort(3000, **TRUE, alpha_beta_gy=3.0, seed=11)


def test_geud_kernel_matches_direct_formula():
    rng = np.random.default_rng(0)
    dose = rng.uniform(0.0, 70.0, (5, 12))
    vol = rng.dirichlet(np.ones(12), 5)
    kern = GeudKernel(dose, vol)
    for n in (0.05, 0.3, 1.0, 4.0):
        g = kern.evaluate(n)[0]
        direct = np.sum(vol * dose ** (1 / n), axis=1) ** n
        np.testing.assert_allclose(g, direct, rtol=1e-10)


def test_geud_kernel_derivatives_against_finite_differences():
    rng = np.random.default_rng(1)
    dose = rng.uniform(0.5, 70.0, (4, 9))
    vol = rng.dirichlet(np.ones(9), 4)
    kern = GeudKernel(dose, vol)
    n, h = 0.37, 1e-5

    def g_of(nn):
        return np.sum(vol * dose ** (1 / nn), axis=1) ** nn

    _, g1, g2 = kern.evaluate(n)
    np.testing.assert_allclose(g1, (g_of(n + h) - g_of(n - h)) / (2 * h), rtol=1e-5)
    np.testing.assert_allclose(
        g2, (g_of(n + h) - 2 * g_of(n) + g_of(n - h)) / h**2, rtol=1e-3, atol=1e-3
    )


def test_kernel_survives_underflow_of_low_dose_patients():
    # One patient receives only ~0.01 Gy while another receives 80 Gy: with n = 0.01
    # (a = 100) the globally scaled sum underflows and must be rescued.
    dose = np.array([[0.01, 0.02], [40.0, 80.0]])
    vol = np.array([[0.5, 0.5], [0.5, 0.5]])
    g, g1, _ = GeudKernel(dose, vol).evaluate(0.01)
    direct = np.array(
        [0.5 * 0.01**100 + 0.5 * 0.02**100, 0.5 * 40.0**100 + 0.5 * 80.0**100]
    )
    expected = np.exp(0.01 * np.log(direct))
    np.testing.assert_allclose(g, expected, rtol=1e-8)
    assert np.all(np.isfinite(g1))


def test_loglik_gradient_and_hessian_against_finite_differences():
    c = simulate_lkb_cohort(60, **TRUE, seed=3)
    lik = LkbLikelihood(GeudKernel(c.dvhs.dose_gy, c.dvhs.volume_fraction), c.outcome)
    phi = np.log([27.0, 0.3, 0.6])
    f, grad, hess = lik.derivatives(phi)
    expected_f = _naive_loglik(
        c.dvhs.dose_gy, c.dvhs.volume_fraction, c.outcome, *np.exp(phi)
    )
    assert f == pytest.approx(expected_f, rel=1e-9)
    h = 1e-5
    num_grad = np.zeros(3)
    num_hess = np.zeros((3, 3))
    for k in range(3):
        e = np.zeros(3)
        e[k] = h
        fp, gp, _ = lik.derivatives(phi + e)
        fm, gm, _ = lik.derivatives(phi - e)
        num_grad[k] = (fp - fm) / (2 * h)
        num_hess[:, k] = (gp - gm) / (2 * h)
    np.testing.assert_allclose(grad, num_grad, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hess, num_hess, rtol=1e-4, atol=1e-4)


def test_mle_agrees_with_brute_force_grid_search():
    c = simulate_lkb_cohort(150, **TRUE, seed=5)
    dose, vol, y = c.dvhs.dose_gy, c.dvhs.volume_fraction, c.outcome.astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewEventsWarning)
        model = LKBModel().fit(c.dvhs, y)
    # Grid centred on nothing the model computed: a wide fixed grid, refined once.
    s = 2 * y - 1
    best = (-np.inf, None)
    for n in np.exp(np.linspace(np.log(0.1), np.log(3.0), 41)):
        g = np.sum(vol * dose ** (1 / n), axis=1) ** n
        for t in np.linspace(15.0, 50.0, 71):
            m = np.linspace(0.05, 0.8, 76)[:, None]
            ll = log_ndtr(s * (g - t) / (m * t)).sum(axis=1)
            k = int(np.argmax(ll))
            if ll[k] > best[0]:
                best = (float(ll[k]), (t, float(m[k, 0]), float(n)))
    t_g, m_g, n_g = best[1]
    assert model.loglik_ >= best[0] - 1e-9
    assert model.td50_gy_ == pytest.approx(t_g, abs=0.5 + 0.03 * t_g)
    assert model.m_ == pytest.approx(m_g, abs=0.02)
    assert np.log(model.n_) == pytest.approx(np.log(n_g), abs=0.1)


def test_profile_bounds_drop_loglik_by_1_92(cohort_eqd2):
    c = cohort_eqd2
    model = LKBModel(alpha_beta_gy=3.0).fit(c.dvhs, c.outcome)
    lo, hi = model.ci95_["n"]
    assert lo < model.n_ < hi
    # At the bound of n, the best log-likelihood over (TD50, m) is 1.92 below the max.
    for bound in (lo, hi):
        fixed = LKBModel(fix_n=bound, alpha_beta_gy=3.0, profile_ci=False)
        fixed.fit(c.dvhs, c.outcome)
        assert model.loglik_ - fixed.loglik_ == pytest.approx(1.9207, abs=2e-3)


def test_true_parameters_inside_intervals_one_large_replicate(cohort_eqd2):
    c = cohort_eqd2
    model = LKBModel(alpha_beta_gy=3.0).fit(c.dvhs, c.outcome)
    for name, truth in TRUE.items():
        lo, hi = model.ci95_[name]
        # Loose: inside a doubled interval around the estimate.
        est = model.summary_.loc[name, "estimate"]
        assert est - 2 * (est - lo) < truth < est + 2 * (hi - est), name


def test_physical_fit_of_eqd2_truth_is_detectably_worse(cohort_eqd2):
    c = cohort_eqd2
    right = LKBModel(alpha_beta_gy=3.0, profile_ci=False).fit(c.dvhs, c.outcome)
    wrong = LKBModel(profile_ci=False).fit(c.dvhs, c.outcome)
    # Same number of parameters: a log-likelihood gap of > 10 is decisive.
    assert right.loglik_ - wrong.loglik_ > 10


def test_fixed_n_reports_no_interval_for_n():
    c = simulate_lkb_cohort(800, **TRUE, seed=8)
    model = LKBModel(fix_n=0.5).fit(c.dvhs, c.outcome)
    assert model.n_ == 0.5
    assert model.ci95_["n"] is None
    assert bool(model.summary_.loc["n", "fixed"])
    p = model.predict_ntcp(c.dvhs)
    expected = ndtr((c.true_geud_gy - model.td50_gy_) / (model.m_ * model.td50_gy_))
    np.testing.assert_allclose(p, expected, rtol=1e-9)


def test_no_events_and_all_events_raise():
    c = simulate_lkb_cohort(50, **TRUE, seed=2)
    with pytest.raises(DegenerateOutcomeError, match="no events"):
        LKBModel().fit(c.dvhs, np.zeros(50))
    with pytest.raises(DegenerateOutcomeError, match="all 50"):
        LKBModel().fit(c.dvhs, np.ones(50))


def test_bad_dvhs_raise():
    with pytest.raises(
        DvhValidationError, match=r"patient 1: volume fractions sum to 0\.8"
    ):
        DVHSet.from_dvhs([([1.0, 2.0], [0.5, 0.5]), ([1.0, 2.0], [0.4, 0.4])])
    with pytest.raises(DvhValidationError, match="negative dose"):
        DVHSet.from_dvhs([([-1.0, 2.0], [0.5, 0.5])])


def test_missing_fractions_with_eqd2_raises():
    c = simulate_lkb_cohort(100, **TRUE, seed=2)
    nfx = c.dvhs.n_fractions.copy()
    nfx[7] = np.nan
    with pytest.raises(MissingFractionsError, match="index 7"):
        LKBModel(alpha_beta_gy=3.0).fit(c.dvhs, c.outcome, n_fractions=nfx)


def test_identical_dvhs_are_not_identifiable():
    dvh = ([10.0, 20.0, 30.0], [0.2, 0.5, 0.3])
    y = np.array([0, 1] * 100)
    with pytest.raises(NonIdentifiableError, match="same gEUD"):
        LKBModel().fit([dvh] * 200, y)


def test_perfect_separation_is_reported():
    c = simulate_lkb_cohort(300, **TRUE, seed=4)
    y = (c.true_geud_gy > np.median(c.true_geud_gy)).astype(int)
    with pytest.raises(NonIdentifiableError, match="separated"):
        LKBModel(fix_n=TRUE["n"]).fit(c.dvhs, y)
