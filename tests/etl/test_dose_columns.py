"""The column engine's shortcuts give the same bits as its general path.

``ColumnHistogram.add_runs`` (columns in runs sharing an extent) must equal
``ColumnHistogram.add`` with the extents repeated per column, and a raster on the voxel
centres reads the grid's values through an index rather than a copy of them.
"""

from __future__ import annotations

import numpy as np
import pytest

from etl.dose import _columns
from etl.dose._columns import ColumnHistogram
from etl.dose._sampling import axis_weights, resample_planes, voxel_planes

FloatArray = np.ndarray


def _histogram(planes: FloatArray, in_plane: np.ndarray, k0: int) -> ColumnHistogram:
    return ColumnHistogram(
        planes,
        k0=k0,
        n_frames=12,
        dk=2.5,
        in_plane=in_plane,
        cell_mm2=0.7,
        bin_width_gy=0.01,
    )


def _state(acc: ColumnHistogram) -> tuple[bytes, float, float, float, float, float]:
    return (
        acc.differential_cc().tobytes(),
        acc.inside_mm3,
        acc.outside_mm3,
        acc.dose_mm3,
        acc.min_gy,
        acc.max_gy,
    )


@pytest.mark.parametrize(
    ("z_lo", "z_hi", "all_in_plane"),
    [
        (1.0, 26.0, True),  # inside the grid (planes at 0 .. 27.5 mm)
        (-4.0, 31.0, True),  # beyond both outer planes: clipped, counted outside
        (1.0, 26.0, False),  # some cells beyond the grid in-plane
    ],
)
def test_add_runs_equals_add_with_repeated_extents(
    monkeypatch: pytest.MonkeyPatch, z_lo: float, z_hi: float, all_in_plane: bool
) -> None:
    # Batches of 50 columns, so that runs are cut across batches too.
    monkeypatch.setattr(_columns, "_BATCH", 50)
    rng = np.random.default_rng(7)
    ncell, k0 = 40, 1
    planes = rng.uniform(0.0, 60.0, (11, ncell))
    in_plane = np.ones(ncell, bool) if all_in_plane else rng.random(ncell) > 0.2
    z = np.sort(rng.uniform(z_lo, z_hi, 9))
    z[3] = z[4]  # an empty gap
    counts = rng.integers(0, 30, len(z) - 1)
    counts[5] = 0
    cells = np.concatenate(
        [np.sort(rng.choice(ncell, c, replace=False)) for c in counts]
    )

    by_runs = _histogram(planes, in_plane, k0)
    by_runs.add_runs(cells, counts, z[:-1], z[1:])
    by_columns = _histogram(planes, in_plane, k0)
    by_columns.add(cells, np.repeat(z[:-1], counts), np.repeat(z[1:], counts))

    assert by_columns.inside_mm3 > 0
    assert _state(by_runs) == _state(by_columns)


def test_voxel_planes_read_the_grid_as_resample_planes_copies_it() -> None:
    rng = np.random.default_rng(3)
    dose = rng.uniform(0.0, 70.0, (6, 5, 7))
    # A raster on the voxel centres reaching two columns and a row beyond the grid.
    cols = axis_weights(np.arange(-2, 5) * 2.0, 2.0, 7)
    rows = axis_weights(np.arange(-1, 4) * 3.0, 3.0, 5)
    copied = resample_planes(dose, 1, 4, rows[:3], cols[:3])
    voxels = voxel_planes(dose, 1, 4, rows[:3], cols[:3])
    assert voxels is not None
    planes, cells_at, dose_range = voxels
    assert np.shares_memory(planes, dose)
    assert not planes.flags.writeable
    np.testing.assert_array_equal(planes[:, cells_at], copied)
    assert dose_range == (copied.min(), copied.max())
    # Off the voxel centres: no shortcut.
    half = axis_weights(np.arange(0, 5) * 2.0 + 1.0, 2.0, 7)
    assert voxel_planes(dose, 1, 4, rows[:3], half[:3]) is None


def test_prisms_through_cells_at_equal_prisms_on_copied_planes() -> None:
    rng = np.random.default_rng(5)
    dose = rng.uniform(0.0, 70.0, (12, 5, 7))
    cols = axis_weights(np.arange(-2, 6) * 2.0, 2.0, 7)
    rows = axis_weights(np.arange(-1, 4) * 3.0, 3.0, 5)
    in_plane = (rows[3][:, None] & cols[3][None, :]).ravel()
    voxels = voxel_planes(dose, 0, 11, rows[:3], cols[:3])
    assert voxels is not None
    planes, cells_at, dose_range = voxels
    copied = resample_planes(dose, 0, 11, rows[:3], cols[:3])
    kw = {"k0": 0, "n_frames": 12, "dk": 2.5, "cell_mm2": 6.0, "bin_width_gy": 0.01}
    by_index = ColumnHistogram(
        planes,
        in_plane=in_plane,
        exact=False,
        cells_at=cells_at,
        dose_range=dose_range,
        **kw,
    )
    by_copy = ColumnHistogram(copied, in_plane=in_plane, exact=False, **kw)
    for acc in (by_index, by_copy):
        acc.add_prism(np.arange(in_plane.size), -3.0, 7.0)  # beyond plane 0 too
        acc.add_prism(np.flatnonzero(in_plane)[::2], 7.0, 21.0)
    assert by_copy.inside_mm3 > 0
    assert by_copy.outside_mm3 > 0
    assert _state(by_index) == _state(by_copy)


def _even_odd(polys: list[np.ndarray], px: float, py: float) -> bool:
    """Ray casting to the left of (px, py), edges half-open in y (as documented)."""
    inside = False
    for poly in polys:
        for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
            if min(y0, y1) <= py < max(y0, y1):
                xc = x0 + (py - y0) / (y1 - y0) * (x1 - x0)
                inside ^= bool(xc < px)
    return inside


def test_fill_planes_is_the_even_odd_rule_on_every_plane() -> None:
    from etl.dose._raster import fill_planes

    square = np.array([[1.0, 1.0], [9.0, 1.2], [8.7, 9.0], [1.3, 8.8]])
    hole = np.array([[3.0, 3.0], [6.0, 3.1], [5.0, 6.0]])
    triangle = np.array([[0.2, 0.4], [7.5, 2.0], [2.0, 9.3]])
    planes = [[square, hole], [triangle], [], [triangle + 1.0, hole]]
    x = np.arange(0.0, 11.0, 0.7) + 0.05
    y = np.arange(0.0, 10.5, 0.6) + 0.03
    masks = fill_planes(planes, x, y)
    assert masks.shape == (4, len(y), len(x))
    assert masks.dtype == np.bool_
    assert masks.flags.c_contiguous
    expected = np.array(
        [[[_even_odd(ps, px, py) for px in x] for py in y] for ps in planes]
    )
    np.testing.assert_array_equal(masks, expected)
    assert masks[0].any() and not masks[2].any()


def test_bulge_fit_is_numpys_polyfit_and_polyval_bit_for_bit() -> None:
    from etl.dose._interp import _horner, polyfit

    rng = np.random.default_rng(11)
    for n, deg in ((3, 2), (4, 3), (4, 3), (3, 2), (4, 3)):
        x = np.sort(rng.uniform(0, 50, n))
        y = rng.uniform(0, 3000, n)
        coef = polyfit(x, y, deg)
        assert coef.tobytes() == np.polyfit(x, y, deg).tobytes()
        at = float(rng.uniform(0, 50))
        assert _horner(coef, at) == float(np.polyval(coef, at))
