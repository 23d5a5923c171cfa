"""The scale benchmark's extrapolation to a size not built (benchmarks/_scale_extrapolate)."""

from __future__ import annotations

import math

import pytest

from benchmarks._scale_extrapolate import extrapolate, format_table

RESULTS = {
    "s/build": {"patients": 25_000, "database_bytes": 4 * 2**30, "rows": 2e7,
                "rows_per_s": 40_000.0},
    "l/build": {"patients": 100_000, "database_bytes": 16 * 2**30, "rows": 8e7,
                "rows_per_s": 32_000.0},
    "s/queries": {"grows": {"median_ms": 50.0, "p95_ms": 100.0},
                  "shrinks": {"median_ms": 30.0, "p95_ms": 40.0},
                  "only-small": {"median_ms": 1.0, "p95_ms": 1.0}},
    "l/queries": {"grows": {"median_ms": 100.0, "p95_ms": 400.0},
                  "shrinks": {"median_ms": 20.0, "p95_ms": 30.0}},
}  # fmt: skip


def test_power_law_through_both_sizes_and_proportional_bound() -> None:
    got = extrapolate(RESULTS, "s", "l", 400_000)
    grows = got["queries"]["grows"]
    # p95 quadruples for 4x the patients: slope 1, so 400 ms * 4 at 4x again
    assert grows["slope"] == pytest.approx(1.0)
    assert grows["p95_power"] == pytest.approx(1600.0)
    assert grows["p95_linear"] == pytest.approx(1600.0)
    # the median doubles for 4x: slope 1/2, so 100 ms * sqrt(4) = 200 ms
    assert grows["median_power"] == pytest.approx(100.0 * math.sqrt(4.0))
    assert grows["meets_goal"]
    shrinks = got["queries"]["shrinks"]
    assert shrinks["slope"] == 0.0  # faster at the larger size: not extrapolated down
    assert shrinks["p95_power"] == pytest.approx(30.0)
    assert shrinks["p95_linear"] == pytest.approx(120.0)
    assert "only-small" not in got["queries"]
    assert got["build"]["database_gib"] == pytest.approx(64.0)
    assert got["build"]["load_s_at_large_rate"] == pytest.approx(3.2e8 / 32_000.0)
    assert "| grows | 100 | 400 | 1.00 | 1,600 | 1,600 | yes |" in format_table(got)


def test_goal_uses_the_larger_of_power_and_proportional() -> None:
    got = extrapolate(RESULTS, "s", "l", 600_000)
    assert got["queries"]["grows"]["p95_linear"] == pytest.approx(2400.0)
    assert not got["queries"]["grows"]["meets_goal"]


def test_missing_or_misordered_builds_say_what_to_do() -> None:
    with pytest.raises(SystemExit, match="no 'x/build'"):
        extrapolate(RESULTS, "x", "l", 300_000)
    with pytest.raises(SystemExit, match="must be larger"):
        extrapolate(RESULTS, "l", "s", 300_000)
