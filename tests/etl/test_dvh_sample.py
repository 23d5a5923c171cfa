"""All curves at once equal the per-curve path (DVH.cumulative / dvh_to_eqd2)."""

from __future__ import annotations

import numpy as np
import pytest

from etl.dose.dvh_sample import sample_cumulative
from etl.dose.histogram import DVH
from etl.dose.radiobiology import dvh_to_eqd2
from etl.errors import DoseGridError


def _dvhs(seed: int, n: int) -> list[DVH]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w = [0.01, 0.1, 0.25][i % 3]
        bins = int(rng.integers(5, 4000 if w == 0.01 else 400))
        diff = rng.exponential(1.0, bins) * (rng.random(bins) < 0.7)
        first = int(rng.integers(0, bins // 2 + 1))
        diff[:first] = 0.0
        if i % 7 == 0:
            diff[:] = 0.0  # nothing inside the grid: left out
        occupied = np.flatnonzero(diff)
        if occupied.size:
            low = (occupied[0] + rng.random()) * w
            high = (occupied[-1] + rng.random()) * w
            if i % 5 == 0:  # the minimum on a bin edge
                low = occupied[0] * w
            high = max(high, low)
        else:
            low = high = float("nan")
        mean = float("nan") if not occupied.size else (low + high) / 2
        out.append(DVH(float(diff.sum()) + 1.0, 1.0, low, mean, high, w, diff))
    return out


def _per_curve(dvhs, step, fractions=None, ab=3.0):
    """The loop dvh_band ran before: one conversion and interpolation per curve."""
    curves, top = [], 0.0
    for i, physical in enumerate(dvhs):
        dvh = physical if fractions is None else dvh_to_eqd2(physical, fractions[i], ab)
        dose, volume = dvh.cumulative()
        if volume.size == 0 or volume[0] <= 0:
            curves.append(None)
            continue
        curves.append((dose, 100.0 * volume / volume[0]))
        top = max(top, float(dose[-1]))
    grid = np.arange(0.0, top + step, step)
    rows = [np.interp(grid, d, v, right=0.0) for d, v in filter(None, curves)]
    return grid, np.vstack(rows), np.array([c is not None for c in curves])


@pytest.mark.parametrize("step", [1.0, 0.37])
def test_physical_equals_per_curve(step):
    dvhs = _dvhs(1, 60)
    grid, got, kept = sample_cumulative(dvhs, step)
    want_grid, want, want_kept = _per_curve(dvhs, step)
    np.testing.assert_array_equal(grid, want_grid)
    np.testing.assert_array_equal(kept, want_kept)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("step", "ab"), [(1.0, 3.0), (0.5, 10.0), (2.3, 1.5)])
def test_eqd2_equals_per_curve(step, ab):
    dvhs = _dvhs(2, 80)
    fractions = np.random.default_rng(3).choice([1, 3, 5, 15, 25, 30, 39], len(dvhs))
    grid, got, kept = sample_cumulative(
        dvhs, step, fractions=fractions.tolist(), alpha_beta_gy=ab
    )
    want_grid, want, want_kept = _per_curve(dvhs, step, fractions, ab)
    np.testing.assert_allclose(grid, want_grid, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(kept, want_kept)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert got.max() == pytest.approx(100.0) and (got[:, -1] == 0).all()


def test_no_curves_and_an_implausible_dose():
    grid, got, kept = sample_cumulative([], 1.0)
    assert grid.tolist() == [0.0] and got.shape == (0, 1) and kept.size == 0
    huge = DVH(2.0, 0.0, 5e5, 5e5, 5e5, 1e-3, np.r_[np.zeros(10), 2.0])
    with pytest.raises(DoseGridError, match="bins"):
        sample_cumulative([huge], 1.0, fractions=[1.0])
