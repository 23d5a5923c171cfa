"""The numpy Aalen-Johansen and Kaplan-Meier estimates equal lifelines' to 1e-9."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter

from cohort.benchmark import cumulative_incidence
from cohort.benchmark.estimators import aalen_johansen, kaplan_meier


def _cohort(seed: int, n: int, days: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t_end = rng.exponential(400, n)
    t_death = rng.exponential(700, n)
    t_cens = rng.uniform(30, 600, n)
    dur = np.minimum.reduce([t_end, t_death, t_cens])
    ev = np.select([t_end <= np.minimum(t_death, t_cens), t_death <= t_cens], [1, 2], 0)
    # Whole days: many ties of every kind (endpoint, death, censored on one day).
    return (np.floor(dur) + 1 if days else dur + 0.5), ev


def _lifelines_aj(t, e, k, jitter, seed):
    state = np.random.get_state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aj = AalenJohansenFitter(jitter_level=jitter, seed=seed).fit(
                t, e, event_of_interest=k
            )
    finally:
        np.random.set_state(state)
    ci = aj.confidence_interval_.to_numpy(dtype=float)
    return (
        aj.cumulative_density_.index.to_numpy(dtype=float),
        aj.cumulative_density_.iloc[:, 0].to_numpy(dtype=float),
        ci[:, 0],
        ci[:, 1],
    )


@pytest.mark.parametrize(
    ("seed", "n", "days", "k"),
    [(1, 300, True, 1), (2, 1200, True, 2), (3, 200, False, 1), (4, 40, True, 1)],
)
def test_aalen_johansen_equals_lifelines(seed, n, days, k):
    t, e = _cohort(seed, n, days)
    t = np.where(e == 0, t + 1e-5, t)  # as cumulative_incidence calls it
    want = _lifelines_aj(t, e, k, 1e-6, 0)
    got = aalen_johansen(t, e.astype(np.int64), k, jitter=1e-6, seed=0)
    np.testing.assert_array_equal(got[0], want[0])
    for g, w in zip(got[1:], want[1:], strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-9, equal_nan=True)
    assert np.isfinite(got[2]).sum() > n // 10  # the intervals were compared


def test_types_tied_twice_each_are_not_jittered_as_in_lifelines():
    # Day 3: two endpoints and two deaths; lifelines sees no tie and does not jitter.
    t = np.array([1.0, 3, 3, 3, 3, 5, 6, 7, 8, 9])
    e = np.array([1, 1, 1, 2, 2, 0, 1, 2, 1, 0])
    want = _lifelines_aj(t, e, 1, 1e-4, 0)
    got = aalen_johansen(t, e, 1, jitter=1e-4, seed=0)
    np.testing.assert_array_equal(got[0], want[0])
    for g, w in zip(got[1:], want[1:], strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize(("seed", "days"), [(5, True), (6, False)])
def test_kaplan_meier_equals_lifelines(seed, days):
    t, e = _cohort(seed, 500, days)
    t[:3] = 0.0  # censored at time 0
    e[:3] = 0
    km = KaplanMeierFitter().fit(t, event_observed=(e == 1))
    ci = km.confidence_interval_.to_numpy(dtype=float)
    times, s, lower, upper = kaplan_meier(t, e == 1)
    np.testing.assert_array_equal(times, km.survival_function_.index.to_numpy())
    want_s = km.survival_function_.iloc[:, 0].to_numpy()
    np.testing.assert_allclose(s, want_s, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lower, ci[:, 0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(upper, ci[:, 1], rtol=0, atol=1e-9)


def test_cumulative_incidence_reads_lifelines_curves_by_day():
    t, e = _cohort(7, 600, True)
    got = cumulative_incidence(t, e, horizon_days=365).set_index("days")
    shifted = np.where(e == 0, t + 1e-5, t)
    idx, est, c1, c2 = _lifelines_aj(shifted, e, 1, 1e-6, 0)
    km = KaplanMeierFitter().fit(t, event_observed=(e == 1))
    for day in (30.0, 120.0, 365.0):
        pos = np.searchsorted(idx, day + 1e-4, side="right") - 1
        row = got.loc[day]
        assert row["aalen_johansen"] == pytest.approx(est[pos], abs=1e-9)
        assert row["aj_lower_95"] == pytest.approx(min(c1[pos], c2[pos]), abs=1e-9)
        assert row["aj_upper_95"] == pytest.approx(max(c1[pos], c2[pos]), abs=1e-9)
        assert row["one_minus_km"] == pytest.approx(
            1 - float(km.predict(day)), abs=1e-9
        )
