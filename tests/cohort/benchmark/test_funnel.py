"""Funnel limits against exact Poisson quantiles computed with scipy directly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import poisson

from cohort.benchmark import BenchmarkInputError, funnel_limits, funnel_points

EXPECTED = np.array([0.5, 1.0, 3.0, 7.5, 20.0, 64.0, 250.0, 1000.0])


def test_exact_limits_are_poisson_quantiles_over_expected():
    t = funnel_limits(EXPECTED, method="exact")
    for level, s in ((0.95, "95"), (0.998, "998")):
        p = (1 - level) / 2
        for i, e in enumerate(EXPECTED):
            # Smallest r with P(X <= r) >= p, found by scanning the CDF.
            r_lo = next(r for r in range(5000) if poisson.cdf(r, e) >= p)
            r_hi = next(r for r in range(5000) if poisson.cdf(r, e) >= 1 - p)
            assert t[f"lower_{s}"][i] == pytest.approx(r_lo / e)
            assert t[f"upper_{s}"][i] == pytest.approx(r_hi / e)


def test_interpolated_limits_invert_the_linearly_interpolated_cdf():
    t = funnel_limits(EXPECTED)
    for level, s in ((0.95, "95"), (0.998, "998")):
        p = (1 - level) / 2
        for i, e in enumerate(EXPECTED):
            for col, q in ((f"lower_{s}", p), (f"upper_{s}", 1 - p)):
                x = t[col][i] * e
                r = np.ceil(x)
                # F interpolated linearly between r - 1 and r must equal q at x.
                f_x = poisson.cdf(r - 1, e) + (x - (r - 1)) * poisson.pmf(r, e)
                if x > 0:
                    assert f_x == pytest.approx(q, abs=1e-9)
                else:  # clipped at 0: the quantile lies below 0
                    assert poisson.cdf(0, e) >= q


def test_spiegelhalter_worked_example():
    # E = 10, p = 0.975: r = 17 (F(16) = 0.97296, F(17) = 0.98572),
    # alpha = (0.98572 - 0.975) / (0.98572 - 0.97296) = 0.8401, limit = 16.160 / 10.
    t = funnel_limits([10.0], levels=(0.95,))
    f16, f17 = poisson.cdf(16, 10), poisson.cdf(17, 10)
    assert t["upper_95"][0] == pytest.approx((17 - (f17 - 0.975) / (f17 - f16)) / 10)
    assert t["upper_95"][0] == pytest.approx(1.6160, abs=1e-4)


def test_limits_narrow_with_expected_and_nest_by_level():
    t = funnel_limits(EXPECTED)
    assert np.all(np.diff(t["upper_95"]) < 0)
    assert np.all(t["lower_998"] <= t["lower_95"])
    assert np.all(t["upper_998"] >= t["upper_95"])


def test_points_flags_and_zero_expected():
    t = funnel_points([30, 10, 0, 2], [10.0, 10.0, 0.0, 10.0], ["A", "B", "C", "D"])
    assert t["ratio"][0] == 3.0
    assert t["outside_95"].tolist() == [True, False, False, True]
    assert t["outside_998"].tolist() == [True, False, False, False]
    assert np.isnan(t["ratio"][2])


def test_bad_input_is_named():
    with pytest.raises(BenchmarkInputError, match="expected"):
        funnel_limits([-1.0])
    with pytest.raises(BenchmarkInputError, match="lengths differ"):
        funnel_points([1, 2], [1.0], ["a", "b"])
    with pytest.raises(BenchmarkInputError, match="method"):
        funnel_limits([1.0], method="normal")
