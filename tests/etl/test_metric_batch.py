"""The batch evaluator equals the one-metric engine exactly, and the analytic values."""

from __future__ import annotations

import numpy as np
import pytest

from etl.dose.dvh import DVH
from etl.dose.metric_batch import evaluate_many
from etl.dose.metrics import evaluate, parse_metric
from etl.dose.radiobiology import dvh_to_eqd2
from etl.errors import MetricSyntaxError
from etl.store.metric_set import default_metrics

SPECS = [
    "Mean[Gy]", "Min[Gy]", "Max[Gy]", "Mean[cGy]", "Max[cGy]", "D0.03cc[Gy]",
    "D2%[Gy]", "D50%[Gy]", "D95%[Gy]", "D98%[Gy]", "D99%[Gy]", "D0%[Gy]",
    "D100%[Gy]", "D2cc[Gy]", "D5cc[Gy]", "D1000cc[Gy]", "D95%[cGy]", "V5Gy[%]",
    "V10Gy[%]", "V12Gy[cc]", "V15Gy[%]", "V20Gy[%]", "V25Gy[%]", "V1234.5cGy[%]",
    "V0Gy[cc]", "V10.005Gy[%]", "V19.99Gy[cc]", "V70Gy[%]",
]  # fmt: skip


def _uniform(lo=10.0, hi=20.0, volume=4.0, width=0.01):
    # Dose uniformly distributed on [lo, hi): V(>=D) = volume (hi - D) / (hi - lo).
    n = round(hi / width)
    diff = np.zeros(n)
    first = round(lo / width)
    diff[first:] = volume / (n - first)
    return DVH(volume, 0.0, lo, (lo + hi) / 2, hi, width, diff)


def _random(rng, n_bins, width=0.01, zeros=0.3, outside=0.0):
    diff = rng.exponential(0.02, n_bins)
    diff[rng.random(n_bins) < zeros] = 0.0
    lo = int(np.argmax(diff > 0))
    hi = n_bins - 1 - int(np.argmax(diff[::-1] > 0))
    mn = (lo + rng.random()) * width
    mx = max(mn, (hi + rng.random()) * width)
    total = float(diff.sum())
    centres = (np.arange(n_bins) + 0.5) * width
    mean = float(np.sum(diff * centres) / total)
    return DVH(total + outside, outside, mn, mean, mx, width, diff)


def _same(dvh, specs):
    assert evaluate_many(dvh, specs) == [evaluate(dvh, s) for s in specs]


def test_analytic_values_of_a_uniform_dose():
    got = evaluate_many(
        _uniform(), ["D95%[Gy]", "D2cc[Gy]", "V12Gy[%]", "V12Gy[cc]", "Max[cGy]"]
    )
    assert got == pytest.approx([10.5, 15.0, 80.0, 3.2, 2000.0], abs=1e-9)
    assert evaluate_many(_uniform(), ["D5cc[Gy]", "V25Gy[%]"]) == [None, 0.0]


@pytest.mark.parametrize("width", [0.01, 0.1, 1.0, 2.5])
def test_equals_one_metric_engine_on_uniform_doses(width):
    _same(_uniform(width=width), SPECS)
    _same(_uniform(lo=0.0, hi=70.0, width=width), SPECS)


def test_equals_one_metric_engine_on_small_and_point_structures():
    diff = np.zeros(3001)
    diff[3000] = 0.5
    _same(DVH(0.5, 0.0, 30.001, 30.002, 30.004, 0.01, diff), SPECS)
    single = np.zeros(2001)
    single[2000] = 0.01
    _same(DVH(0.01, 0.0, 20.0, 20.0, 20.0, 0.01, single), SPECS)  # min == max
    _same(DVH(2.0, 0.0, 10.0, 15.0, 20.0, 5.0, np.array([0, 0, 1.0, 1.0])), SPECS)


def test_equals_one_metric_engine_on_random_and_eqd2_curves():
    rng = np.random.default_rng(7)
    for k in range(200):
        d = _random(rng, int(rng.integers(2, 8000)), outside=0.5 * (k % 3 == 0))
        specs = [*SPECS, *default_metrics(k % 2 == 0, d.max_gy)]
        _same(d, specs)
        _same(
            dvh_to_eqd2(d, int(rng.integers(1, 40)), float(rng.choice([3, 10]))), specs
        )


def test_node_thresholds_hit_exactly():
    # Thresholds on bin edges, on the minimum and on the maximum.
    d = _uniform()
    _same(d, ["V10Gy[%]", "V20Gy[%]", "V15Gy[cc]", "V1001cGy[%]", "D100%[Gy]"])


def test_undefined_and_non_monotone_curves():
    empty = DVH(1.0, 1.0, float("nan"), float("nan"), float("nan"), 0.01, np.zeros(0))
    assert evaluate_many(empty, SPECS) == [None] * len(SPECS)
    _same(DVH(1.0, 0.0, 0.0, 0.0, 0.0, 0.01, np.zeros(5)), SPECS)  # no volume
    # A negative bin (a hand-made curve): the nodes are not monotone; same answers.
    odd = DVH(1.0, 0.0, 0.005, 0.02, 0.045, 0.01, np.array([0.5, -0.2, 0.4, 0.2, 0.1]))
    _same(odd, SPECS)


def test_parsed_metrics_and_errors():
    parsed = [parse_metric(s) for s in SPECS]
    assert evaluate_many(_uniform(), parsed) == evaluate_many(_uniform(), SPECS)
    with pytest.raises(MetricSyntaxError, match="D95\\[Gy\\]"):
        evaluate_many(_uniform(), ["Mean[Gy]", "D95[Gy]"])
