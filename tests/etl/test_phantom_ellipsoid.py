"""Ellipsoid phantoms: truth against Monte Carlo, sections on the surface."""

from __future__ import annotations

import math

import numpy as np
import pytest

from etl.phantom.geometry import Solid, polygon_area_mm2
from etl.phantom.sections import section_polygon
from etl.phantom.truth import LinearDoseField, cumulative_volume_mm3, roi_truth

CASES = [
    ("z", (0.0, 0.0, 1.0)),
    ("z", (0.0, 1.0, 0.0)),
    ("y", (0.0, 0.0, 1.0)),
    ((1.0, 2.0, 3.0), (0.3, -0.5, 1.0)),
]


@pytest.mark.parametrize(("axis", "gradient"), CASES)
def test_ellipsoid_truth_matches_monte_carlo(axis, gradient):
    solid = Solid.make(
        "ellipsoid", 20.0, height_mm=36.0, axis=axis, centre_mm=(1.0, -2.0, 3.0)
    )
    assert solid.volume_mm3() == pytest.approx(4 / 3 * math.pi * 10 * 10 * 18)
    fld = LinearDoseField.from_point(20.0, solid.centre_mm, gradient)
    truth = roi_truth(solid, fld)
    assert truth.method == "closed_form"
    rng = np.random.default_rng(18)
    lo, hi = solid.bounds_mm()
    pts = lo + (hi - lo) * rng.random((600_000, 3))
    inside = solid.contains(pts)
    box_cc = float(np.prod(hi - lo)) / 1000.0
    frac = inside.mean()
    se_cc = box_cc * math.sqrt(frac * (1 - frac) / len(pts))
    assert abs(truth.volume_cc - frac * box_cc) < 4 * se_cc
    dose = fld.dose_at(pts[inside])
    assert truth.mean_gy == pytest.approx(dose.mean(), abs=0.05)
    for name, pct in (("D95%[Gy]", 5), ("D5%[Gy]", 95), ("D99%[Gy]", 1)):
        assert truth.metrics[name] == pytest.approx(np.percentile(dose, pct), abs=0.08)
    assert truth.min_gy <= dose.min() < truth.min_gy + 1.0
    assert truth.max_gy - 1.0 < dose.max() <= truth.max_gy


def test_ellipsoid_along_gradient_is_a_polynomial():
    # Axis along the gradient: V(beyond s) = pi R^2 (H/2 - s - (H^3/8 - s^3)/(3 H^2/4))
    solid = Solid.make("ellipsoid", 20.0, height_mm=30.0)
    fld = LinearDoseField(0.0, (0.0, 0.0, 1.0))
    r, half = 10.0, 15.0
    for s in (-12.0, 0.0, 7.5):
        want = math.pi * r * r * ((half - s) - (half**3 - s**3) / (3 * half * half))
        assert cumulative_volume_mm3(solid, fld, s) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("axis", ["z", "y", (1.0, 1.0, 1.0)])
def test_ellipsoid_section_vertices_on_surface(axis):
    solid = Solid.make("ellipsoid", 20.0, height_mm=32.0, axis=axis)
    a = np.asarray(solid.axis)
    for z in np.arange(-17.0, 17.5, 1.5):
        poly = section_polygon(solid, float(z))
        if poly is None:
            continue
        s = poly @ a
        perp2 = np.einsum("ij,ij->i", poly, poly) - s * s
        assert np.allclose(perp2 / 100.0 + s * s / 256.0, 1.0, atol=1e-9)
        assert polygon_area_mm2(poly) > 0
    # z-axis: the section at the equator is the circle of radius 10
    if axis == "z":
        poly = section_polygon(solid, 0.0, tolerance_mm=1e-5)
        assert polygon_area_mm2(poly) == pytest.approx(math.pi * 100, rel=1e-4)
