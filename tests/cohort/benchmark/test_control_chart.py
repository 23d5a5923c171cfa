"""Individuals chart against a hand-worked example."""

from __future__ import annotations

import numpy as np
import pytest

from cohort.benchmark import individuals_chart


def test_hand_worked_xmr_chart():
    # Values in date order: 20, 22, 21, 25, 19, 40 (given shuffled).
    # Mean = 147 / 6 = 24.5; moving ranges 2, 1, 4, 6, 21 -> MR-bar = 34 / 5 = 6.8;
    # UCL = 24.5 + 2.66 * 6.8 = 42.588; LCL = 24.5 - 18.088 = 6.412: nothing out.
    dates = [
        "2024-03-06",
        "2024-03-01",
        "2024-03-03",
        "2024-03-02",
        "2024-03-05",
        "2024-03-04",
    ]
    t = individuals_chart([40, 20, 21, 22, 19, 25], dates)
    assert t["value"].tolist() == [20, 22, 21, 25, 19, 40]
    assert np.isnan(t["moving_range"][0])
    assert t["moving_range"][1:].tolist() == [2, 1, 4, 6, 21]
    assert t["centre_line"][0] == pytest.approx(24.5)
    assert t["mr_bar"][0] == pytest.approx(6.8)
    assert t["ucl"][0] == pytest.approx(42.588)
    assert t["lcl"][0] == pytest.approx(6.412)
    assert not t["out_of_limits"].any()


def test_point_outside_is_flagged():
    # 10 x 10.0 alternating +-1 then 30: mean = (100 + 30) / 11 = 11.818...
    values = [9, 11, 9, 11, 9, 11, 9, 11, 9, 11, 30]
    dates = [f"2024-01-{d:02d}" for d in range(1, 12)]
    t = individuals_chart(values, dates)
    mr_bar = (9 * 2 + 19) / 10
    assert t["ucl"][0] == pytest.approx(130 / 11 + 2.66 * mr_bar)
    assert t["out_of_limits"].tolist() == [False] * 10 + [True]


def test_missing_values_left_out_and_tiny_inputs():
    t = individuals_chart(
        [1.0, np.nan, 3.0], ["2024-01-01", "2024-01-02", "2024-01-03"]
    )
    assert t["moving_range"].tolist()[1] == 2.0
    one = individuals_chart([5.0], ["2024-01-01"])
    assert np.isnan(one["ucl"][0]) and not one["out_of_limits"][0]
    assert individuals_chart([], []).empty
