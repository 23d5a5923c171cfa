from __future__ import annotations

import numpy as np
import pytest

from etl.dose.dvh import DVH
from etl.dose.metrics import MetricKind, evaluate, parse_metric
from etl.errors import MetricSyntaxError


def _uniform(lo=10.0, hi=20.0, volume=4.0, width=0.01):
    # Dose uniformly distributed on [lo, hi): V(>=D) = volume (hi - D) / (hi - lo).
    n = round(hi / width)
    diff = np.zeros(n)
    first = round(lo / width)
    diff[first:] = volume / (n - first)
    return DVH(volume, 0.0, lo, (lo + hi) / 2, hi, width, diff)


@pytest.mark.parametrize(
    ("spec", "truth"),
    [
        ("D95%[Gy]", 10.5),
        ("D50%[Gy]", 15.0),
        ("D2cc[Gy]", 15.0),
        ("D0.03cc[Gy]", 20.0 - 10.0 * 0.03 / 4.0),
        ("D0%[Gy]", 20.0),
        ("D100%[Gy]", 10.0),
        ("D95%[cGy]", 1050.0),
        ("V12Gy[%]", 80.0),
        ("V12Gy[cc]", 3.2),
        ("V1234.5cGy[%]", 100 * (20 - 12.345) / 10),
        ("V25Gy[%]", 0.0),
        ("V5Gy[cc]", 4.0),
        ("Mean[Gy]", 15.0),
        ("Min[Gy]", 10.0),
        ("Max[Gy]", 20.0),
    ],
)
def test_metrics_interpolate_on_cumulative(spec, truth):
    assert evaluate(_uniform(), spec) == pytest.approx(truth, abs=1e-9)


def test_small_volume_uses_exact_max_not_bin_edge():
    # 0.5 cc all in one bin [30.00, 30.01) with exact max 30.004
    diff = np.zeros(3001)
    diff[3000] = 0.5
    d = DVH(0.5, 0.0, 30.001, 30.002, 30.004, 0.01, diff)
    assert evaluate(d, "D0.03cc[Gy]") == pytest.approx(30.001 + 0.003 * (0.47 / 0.5))
    assert evaluate(d, "D0.03cc[Gy]") > 30.0


def test_undefined_metrics_are_none():
    d = _uniform()
    assert evaluate(d, "D5cc[Gy]") is None  # more than the volume
    empty = DVH(1.0, 1.0, float("nan"), float("nan"), float("nan"), 0.01, np.zeros(0))
    assert evaluate(empty, "Mean[Gy]") is None
    assert evaluate(empty, "V20Gy[%]") is None


@pytest.mark.parametrize(
    "bad",
    ["D95[Gy]", "D95%", "d95%[Gy]", "D95%[%]", "V20Gy[Gy]", "Mean[%]", "D101%[Gy]",
     "V20[%]", "", "DVH", "D-5%[Gy]", "D95%[Gy] extra"],
)  # fmt: skip
def test_malformed_metric_strings(bad):
    with pytest.raises(MetricSyntaxError):
        parse_metric(bad)


def test_parse_fields():
    m = parse_metric("V2000cGy[cc]")
    assert (m.kind, m.value, m.value_unit, m.output_unit) == (
        MetricKind.VOLUME_AT_DOSE, 20.0, "Gy", "cc",
    )  # fmt: skip
