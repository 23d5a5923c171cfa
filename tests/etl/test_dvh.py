from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import brentq

from etl.dose.dvh import compute_dvh
from etl.dose.grid import DoseGrid
from etl.dose.metrics import evaluate
from etl.errors import (
    ContourWarning,
    GeometryError,
    OutsideGridWarning,
    StructureError,
)
from tests.etl._dose_helpers import (
    circle,
    cube_contours,
    cylinder_contours,
    linear_grid,
    square,
)


def test_cube_in_uniform_dose_is_exact():
    grid = linear_grid(2.0, base_gy=5.0)
    d = compute_dvh(cube_contours(10.0, 2.0), grid)
    assert d.volume_cc == pytest.approx(8.0, rel=1e-9)
    assert d.outside_grid_cc == 0.0
    assert (d.min_gy, d.max_gy) == pytest.approx((5.0, 5.0))
    assert d.mean_gy == pytest.approx(5.0)
    assert evaluate(d, "D95%[Gy]") == pytest.approx(5.0)
    assert evaluate(d, "V5Gy[%]") == pytest.approx(100.0)
    assert evaluate(d, "V5.01Gy[cc]") == pytest.approx(0.0)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cube_in_linear_gradient_has_uniform_dose_distribution(axis):
    # D = 16 + x over a 20 mm cube: dose uniform on [6, 26], V(>=D) = 8 (26 - D) / 20
    g = [0.0, 0.0, 0.0]
    g[axis] = 1.0
    grid = linear_grid(2.0, base_gy=16.0, gradient=tuple(g))
    d = compute_dvh(cube_contours(10.0, 1.0), grid)
    assert d.volume_cc == pytest.approx(8.0, rel=1e-6)
    assert d.min_gy == pytest.approx(6.0, abs=0.05)
    assert d.max_gy == pytest.approx(26.0, abs=0.05)
    assert d.mean_gy == pytest.approx(16.0, abs=0.01)
    for pct in (99, 95, 50, 5, 1):
        truth = 26.0 - 20.0 * pct / 100
        # regular in-plane raster: up to half a sample step (~0.14 Gy) of aliasing
        assert evaluate(d, f"D{pct}%[Gy]") == pytest.approx(truth, rel=0.02, abs=0.1)
    assert evaluate(d, "V20Gy[cc]") == pytest.approx(8.0 * 6 / 20, rel=0.01)
    assert evaluate(d, "D2cc[Gy]") == pytest.approx(26.0 - 20.0 * 2 / 8, rel=0.01)


def test_cumulative_is_consistent_with_differential():
    grid = linear_grid(2.0, gradient=(0.0, 1.0, 0.0))
    d = compute_dvh(cube_contours(10.0, 2.0), grid)
    edges, vol = d.cumulative()
    assert len(edges) == len(d.differential_cc) + 1
    assert vol[0] == pytest.approx(d.volume_cc)
    assert vol[-1] == 0.0
    assert np.all(np.diff(vol) <= 1e-12)
    assert edges[1] - edges[0] == pytest.approx(0.01)


def test_cylinder_volume_and_gradient_along_axis():
    r, half = 10.0, 15.0
    grid = linear_grid(3.0, 90.0, gradient=(0.0, 0.0, 1.0))
    d = compute_dvh(cylinder_contours(r, half, 3.0), grid)
    assert d.volume_cc == pytest.approx(np.pi * r * r * 2 * half / 1000, rel=0.005)
    # Along the axis the section is constant: dose uniform on [1, 31] Gy.
    assert evaluate(d, "D90%[Gy]") == pytest.approx(31.0 - 0.9 * 30, rel=0.01)
    assert evaluate(d, "D10%[Gy]") == pytest.approx(31.0 - 0.1 * 30, rel=0.01)


def test_even_odd_hole_and_islands():
    grid = linear_grid(2.0, base_gy=3.0)
    zs = np.arange(-9.5, 10.0, 1.0)  # 20 mm long with half end caps
    annulus = [c for z in zs for c in (circle(10.0, z), circle(5.0, z))]
    d = compute_dvh(annulus, grid)
    assert d.volume_cc == pytest.approx(np.pi * (100 - 25) * 20 / 1000, rel=0.01)
    islands = [
        c for z in zs for c in (square(4.0, z, (-10, 0)), square(4.0, z, (10, 0)))
    ]
    d2 = compute_dvh(islands, grid)
    assert d2.volume_cc == pytest.approx(2 * 64 * 20 / 1000, rel=0.01)


def test_end_caps_none_ends_on_outer_planes():
    grid = linear_grid(2.0, base_gy=2.0)
    d = compute_dvh(cube_contours(10.0, 2.0), grid, end_caps="none")
    # planes at -9 ... 9: 18 mm tall
    assert d.volume_cc == pytest.approx(20 * 20 * 18 / 1000, rel=1e-9)
    with pytest.raises(ValueError, match="quarter"):
        compute_dvh(cube_contours(10.0, 2.0), grid, end_caps="quarter")


def test_gap_splits_runs_each_capped():
    grid = linear_grid(2.0, base_gy=2.0)
    lower = [square(5.0, z) for z in (-20.5, -19.5, -18.5)]
    upper = [square(5.0, z) for z in (18.5, 19.5, 20.5)]
    d = compute_dvh(lower + upper, grid)
    assert d.volume_cc == pytest.approx(2 * 100 * 3 / 1000, rel=1e-9)


@pytest.mark.parametrize(
    ("row", "col"),
    [
        ((1, 0, 0), (0, 1, 0)),  # HFS
        ((-1, 0, 0), (0, -1, 0)),  # HFP
        ((-1, 0, 0), (0, 1, 0)),  # FFS
        ((1, 0, 0), (0, -1, 0)),  # FFP
        ((0, -1, 0), (1, 0, 0)),  # HFDL
        ((0, 1, 0), (-1, 0, 0)),  # HFDR
    ],
)
def test_patient_orientations_through_direction_cosines(row, col):
    gvec = np.array([0.3, -0.5, 1.0])
    centre = np.array([5.0, -3.0, 2.0])
    grid = linear_grid(
        2.0, base_gy=20.0, gradient=tuple(gvec), row_dir=row, col_dir=col
    )
    d = compute_dvh(cube_contours(8.0, 1.0, tuple(centre)), grid)
    assert d.volume_cc == pytest.approx(16**3 / 1000, rel=1e-6)
    assert d.mean_gy == pytest.approx(20.0 + gvec @ centre, abs=0.01)
    spread = 8.0 * np.abs(gvec).sum()
    assert d.min_gy == pytest.approx(20.0 + gvec @ centre - spread, abs=0.1)
    assert d.max_gy == pytest.approx(20.0 + gvec @ centre + spread, abs=0.1)


def _sphere_truth(frac, radius=12.0, centre_gy=16.0):
    vol = 4 / 3 * np.pi * radius**3

    def cap(h):
        return np.pi * h * h * (3 * radius - h) / 3

    return centre_gy + brentq(lambda z: cap(radius - z) - frac * vol, -radius, radius)


@pytest.mark.parametrize("axis", ["y", "z"])
def test_sphere_in_gradient_matches_closed_form(axis):
    # Nelms-type case: 24 mm sphere, 16 Gy at centre, 1 Gy/mm, 1 mm contours, 2 mm grid.
    g = (0.0, 1.0, 0.0) if axis == "y" else (0.0, 0.0, 1.0)
    grid = linear_grid(2.0, gradient=g)
    zs = np.arange(-11.5, 12.0, 1.0)
    contours = [circle(np.sqrt(144 - z * z), z) for z in zs]
    d = compute_dvh(contours, grid)
    assert d.volume_cc == pytest.approx(4 / 3 * np.pi * 12**3 / 1000, rel=0.01)
    assert d.mean_gy == pytest.approx(16.0, rel=0.01)
    for pct in (95, 50, 5, 1):
        assert evaluate(d, f"D{pct}%[Gy]") == pytest.approx(
            _sphere_truth(pct / 100), rel=0.03
        )
    assert d.min_gy == pytest.approx(4.0, abs=0.5)
    assert d.max_gy == pytest.approx(28.0, abs=0.5)


def test_small_structure_d003cc_is_not_zero():
    # 0.5 cc sphere in 1 Gy/mm: D0.03cc from the closed form, far from 0.
    r = (0.5e3 * 3 / 4 / np.pi) ** (1 / 3)
    grid = linear_grid(3.0, gradient=(0.0, 0.0, 1.0), base_gy=30.0)
    zs = np.arange(-r + 0.5, r, 1.0)
    d = compute_dvh([circle(np.sqrt(r * r - z * z), z) for z in zs], grid)
    truth = _sphere_truth(30 / 500, radius=r, centre_gy=30.0)
    assert evaluate(d, "D0.03cc[Gy]") == pytest.approx(truth, rel=0.03)


def test_partly_outside_grid_is_reported_and_excluded():
    grid = linear_grid(2.0, base_gy=7.0)  # voxels cover -40 ... 40 mm
    contours = cube_contours(10.0, 2.0, (40.0, 0.0, 0.0))
    with pytest.warns(OutsideGridWarning, match="outside the dose grid"):
        d = compute_dvh(contours, grid)
    assert d.volume_cc == pytest.approx(8.0, rel=1e-9)
    assert d.outside_grid_cc == pytest.approx(4.0, rel=1e-9)
    assert d.inside_grid_cc == pytest.approx(4.0, rel=1e-9)
    assert evaluate(d, "V7Gy[%]") == pytest.approx(100.0)


def test_wholly_outside_grid_gives_undefined_metrics():
    grid = linear_grid(2.0, base_gy=7.0)
    with pytest.warns(OutsideGridWarning):
        d = compute_dvh(cube_contours(5.0, 2.0, (100.0, 0.0, 0.0)), grid)
    assert d.outside_grid_cc == pytest.approx(1.0)
    assert np.isnan(d.max_gy)
    assert evaluate(d, "D95%[Gy]") is None
    assert evaluate(d, "Mean[Gy]") is None


def test_short_contours_warn_and_are_skipped():
    grid = linear_grid(2.0, base_gy=1.0)
    contours = cube_contours(10.0, 2.0)
    with pytest.warns(ContourWarning, match="fewer than three"):
        d = compute_dvh([*contours, contours[0][:2]], grid)
    assert d.volume_cc == pytest.approx(8.0, rel=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(StructureError):
            compute_dvh([contours[0][:2]], grid)
    with pytest.raises(StructureError):
        compute_dvh([], grid)


def test_contour_not_parallel_to_slices_is_an_error():
    grid = linear_grid(2.0)
    tilted = square(5.0, 0.0)
    tilted[:, 2] = tilted[:, 0] * 0.1
    with pytest.raises(GeometryError, match="not on a plane parallel"):
        compute_dvh([tilted], grid)


def test_non_orthogonal_cosines_are_an_error():
    with pytest.raises(GeometryError, match="not orthogonal"):
        DoseGrid(
            np.zeros((2, 2, 2)), np.zeros(3), np.array([1.0, 0, 0]),
            np.array([0.1, 0.995, 0]), np.array([0, 0, 1.0]), (1.0, 1.0, 1.0),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("scale", "fill", "message"),
    [
        (1e30, None, "beyond the limit of 5000 mm"),
        (1.0, np.nan, "not finite"),
        (1.0, 2600.0, "beyond the limit of 5000 mm"),
    ],
)
def test_corrupt_contour_coordinates_are_refused(
    scale: float, fill: float | None, message: str
) -> None:
    """Coordinates no patient has end in StructureError, never a numpy MemoryError.

    Found by tests/test_fuzz.py: ContourData of 1e30 made np.arange ask for 1e29
    raster columns ("Maximum allowed size exceeded").
    """
    eye = np.eye(3)
    grid = DoseGrid(np.full((10, 10, 10), 2.0), np.zeros(3), eye[0], eye[1], eye[2],
                    (2.0, 2.0, 2.0))  # fmt: skip
    square = np.array([[4, 4], [12, 4], [12, 12], [4, 12]], float) * scale
    contours = [np.column_stack([square, np.full(4, z)]) for z in (5.0, 7.0, 9.0)]
    if fill is not None:
        contours[1][0, 0] = fill  # one point far away (or not a number)
        contours[1][2, 0] = -fill
    with pytest.raises(StructureError, match=message):
        compute_dvh(contours, grid)
