"""Rounded ends: tips, pointed ends and curved sections between planes (issue 18)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import brentq

from etl.dose.dvh import compute_dvh
from etl.dose.metrics import evaluate
from tests.etl._dose_helpers import circle, cylinder_contours, linear_grid

R = 12.0
SPHERE_CC = 4 / 3 * np.pi * R**3 / 1000


def _sphere_dose_at_volume(frac: float) -> float:
    """D(frac) of a sphere of radius R, 16 Gy at the centre, 1 Gy/mm along +z."""
    vol = 4 / 3 * np.pi * R**3

    def cap(h: float) -> float:  # volume above height R - h
        return np.pi * h * h * (3 * R - h) / 3

    return 16.0 + brentq(lambda z: cap(R - z) - frac * vol, -R, R)


def _tip(kind: str, z: float) -> np.ndarray:
    if kind == "tiny":  # about 0.05 mm2, as a planning system writes a pole
        return circle(0.126, z, n=16)
    if kind == "line":
        return np.array([[-0.1, 0.0, z], [0.1, 0.0, z]])
    return np.array([[0.0, 0.0, z]])


def _sphere_with_poles(spacing: float, kind: str) -> list[np.ndarray]:
    zs = np.arange(-R + spacing, R - spacing / 2, spacing)
    body = [circle(np.sqrt(R * R - z * z), z) for z in zs]
    return [_tip(kind, -R), *body, _tip(kind, R)]


@pytest.mark.parametrize("kind", ["tiny", "line", "point"])
@pytest.mark.parametrize("spacing", [1.0, 2.0, 3.0])
def test_degenerate_pole_contours_are_the_tips_of_the_solid(kind, spacing):
    grid = linear_grid(2.0, gradient=(0.0, 0.0, 1.0))
    contours = _sphere_with_poles(spacing, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short contours warn
        half = compute_dvh(contours, grid, end_caps="half")
        none = compute_dvh(contours, grid, end_caps="none")
    # The whole gap to each pole counts (issue 18: 1.4 / 4.8 / 10.1 % low before).
    assert half.volume_cc == pytest.approx(SPHERE_CC, rel=0.01)
    # A tip is the end of the solid whatever the end-cap convention.
    assert none.volume_cc == pytest.approx(half.volume_cc, rel=1e-9)
    for pct in (99, 95, 5, 1):
        assert evaluate(half, f"D{pct}%[Gy]") == pytest.approx(
            _sphere_dose_at_volume(pct / 100), rel=0.02
        )
    assert half.max_gy == pytest.approx(28.0, abs=0.3)
    assert half.min_gy == pytest.approx(4.0, abs=0.3)


@pytest.mark.parametrize("spacing", [2.0, 3.0])
def test_pole_between_planes_is_a_pointed_end(spacing):
    # Planes fixed at k * spacing + 1 mm: the poles lie up to a spacing beyond.
    grid = linear_grid(2.0, gradient=(0.0, 0.0, 1.0))
    zs = np.arange(-R + 1.0, R, spacing)
    contours = [circle(np.sqrt(R * R - z * z), z) for z in zs]
    d = compute_dvh(contours, grid)
    assert d.volume_cc == pytest.approx(SPHERE_CC, rel=0.015)
    for pct in (99, 95):
        assert evaluate(d, f"D{pct}%[Gy]") == pytest.approx(
            _sphere_dose_at_volume(pct / 100), rel=0.03
        )


def test_cone_apex_point_and_flat_base():
    # Cone: base radius 12 at z = -12.5 (half a spacing below the first plane),
    # apex at z = 12.5, given as a single point.
    grid = linear_grid(2.0)
    zs = np.arange(-12.0, 12.5, 1.0)
    contours = [circle(12.0 * (12.5 - z) / 25.0, z) for z in zs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = compute_dvh([*contours, np.array([[0.0, 0.0, 12.5]])], grid)
    assert d.volume_cc == pytest.approx(np.pi * 144 * 25 / 3 / 1000, rel=0.01)


def test_cylinder_ends_stay_flat():
    grid = linear_grid(2.0)
    d = compute_dvh(cylinder_contours(10.0, 10.0, 2.0), grid)
    assert d.volume_cc == pytest.approx(np.pi * 100 * 20 / 1000, rel=0.005)


def test_distance_transform_equals_scipy():
    from scipy import ndimage

    from etl.dose._raster import _LOADED, distance_edt

    rng = np.random.default_rng(18)
    for shape, sampling in (((40, 55), (0.3, 0.7)), ((7, 3), (1.0, 1.0))):
        free = rng.random(shape) > 0.05
        want = ndimage.distance_transform_edt(free, sampling=sampling)
        assert np.allclose(distance_edt(free, sampling), want, rtol=0, atol=1e-12)
    assert _LOADED["ft"] is not None  # the light path is the one in use here
