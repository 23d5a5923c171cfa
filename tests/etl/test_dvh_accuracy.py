"""End to end: phantom DICOM -> readers -> DVH engine -> metrics, against the truth.

A fast subset of ``benchmarks/dvh_accuracy.py`` (Nelms et al. 2015 geometry): the truth
is the closed-form / exact-quadrature DVH of the true solid written by ``etl.phantom.write``.
"""

from __future__ import annotations

import warnings

import pytest

from etl.dicom.rtdose import read_rtdose
from etl.dicom.rtstruct import read_rtstruct
from etl.dose.dvh import compute_dvh
from etl.dose.metrics import evaluate
from etl.phantom.spec import spec_from_options
from etl.phantom.write import write_phantom

RELATIVE = ("Mean[Gy]", "D99%[Gy]", "D95%[Gy]", "D5%[Gy]", "D1%[Gy]", "D0.03cc[Gy]")

CASES = [
    # shape, axis, gradient, contour spacing, dose grid, offset in voxels
    ("sphere", "z", "z", 1.0, 2.0, 0.0),
    ("cylinder", "y", "y", 1.0, 2.0, 0.5),
    ("cylinder", "z", "z", 2.0, 3.0, 0.0),
    ("cone", "z", "y", 1.0, 2.0, 0.5),
    ("cone", "y", "z", 1.0, 1.0, 0.0),
]


def _run(tmp_path, **options):
    truth = write_phantom(tmp_path, spec_from_options(**options), seed=1)
    dose = read_rtdose(tmp_path / "RTDOSE.dcm")
    roi = read_rtstruct(tmp_path / "RTSTRUCT.dcm").rois[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a phantom inside its grid warns about nothing
        dvh = compute_dvh(roi.contours, dose, end_caps="half")
    return truth["rois"][0], dvh


@pytest.mark.parametrize(
    ("shape", "axis", "gradient", "spacing", "grid", "shift"), CASES
)
def test_nelms_geometry_within_criteria(  # noqa: PLR0917
    tmp_path, shape, axis, gradient, spacing, grid, shift
):
    offset = grid * shift
    ref, dvh = _run(
        tmp_path,
        shape=shape,
        size_mm=24.0,
        axis=axis,
        offset_mm=(offset, offset, offset),
        contour_spacing_mm=spacing,
        dose_grid_mm=grid,
        dose_gy=16.0,
        gradient=gradient,
        gradient_gy_per_mm=1.0,
    )
    assert dvh.outside_grid_cc == 0.0
    # tightened from 3 % / 0.5 Gy with the rounded ends (issue 18)
    assert dvh.volume_cc == pytest.approx(ref["volume_cc"], rel=0.01)
    for name in RELATIVE:
        got = evaluate(dvh, name)
        assert got == pytest.approx(ref["metrics"][name], rel=0.01), name
    assert dvh.min_gy == pytest.approx(ref["min_gy"], abs=0.25)
    assert dvh.max_gy == pytest.approx(ref["max_gy"], abs=0.25)


POLE_CASES = [
    # shape, size, height, contour spacing, gradient
    ("sphere", 24.0, None, 3.0, "z"),
    ("sphere", 10.0, None, 2.0, "z"),
    ("ellipsoid", 20.0, 32.0, 3.0, "z"),
]


@pytest.mark.parametrize(("shape", "size", "height", "spacing", "gradient"), POLE_CASES)
def test_plane_through_a_pole_is_the_tip_of_the_solid(  # noqa: PLR0917
    tmp_path, shape, size, height, spacing, gradient
):
    """A plane 0.05 mm2 inside the top pole: the gap to it counts (issue 18)."""
    from scipy.optimize import brentq

    from etl.phantom.geometry import polygon_area_mm2
    from etl.phantom.sections import section_polygon

    spec = spec_from_options(
        shape, size, height_mm=height, contour_spacing_mm=spacing, dose_grid_mm=2.0,
        dose_gy=20.0, gradient=gradient, gradient_gy_per_mm=1.0,
    )  # fmt: skip
    solid = spec.rois[0].solid()
    top = float(solid.bounds_mm()[1][2])

    def area(depth):
        poly = section_polygon(solid, top - depth, tolerance_mm=1e-6)
        return (0.0 if poly is None else polygon_area_mm2(poly)) - 0.05

    origin = top - brentq(area, 1e-9, 5.0, xtol=1e-9)
    spec = spec.model_copy(update={"contour_plane_origin_mm": origin})
    truth = write_phantom(tmp_path, spec, seed=1)
    dose = read_rtdose(tmp_path / "RTDOSE.dcm")
    roi = read_rtstruct(tmp_path / "RTSTRUCT.dcm").rois[0]
    assert min(polygon_area_mm2(c[:, :2]) for c in roi.contours) < 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dvh = compute_dvh(roi.contours, dose, end_caps="half")
    ref = truth["rois"][0]
    assert dvh.volume_cc == pytest.approx(ref["volume_cc"], rel=0.015)
    for name in RELATIVE:
        assert evaluate(dvh, name) == pytest.approx(ref["metrics"][name], rel=0.015)
    assert dvh.max_gy == pytest.approx(ref["max_gy"], abs=0.25)


def test_uniform_dose_is_exact(tmp_path):
    ref, dvh = _run(
        tmp_path,
        shape="sphere",
        size_mm=10.0,
        contour_spacing_mm=1.0,
        dose_grid_mm=2.0,
        dose_gy=42.0,
        gradient="none",
    )
    for name in (*RELATIVE, "Min[Gy]", "Max[Gy]"):
        assert ref["metrics"][name] == 42.0
        assert evaluate(dvh, name) == pytest.approx(42.0, abs=0.01), name
    assert dvh.volume_cc == pytest.approx(ref["volume_cc"], rel=0.02)


def test_oblique_gradient_sum_of_fields(tmp_path):
    """A field along an arbitrary direction (truth by quadrature) on a cone along y."""
    ref, dvh = _run(
        tmp_path,
        shape="cone",
        size_mm=24.0,
        axis="y",
        contour_spacing_mm=1.0,
        dose_grid_mm=2.0,
        dose_gy=20.0,
        gradient="1,1,1",
        gradient_gy_per_mm=0.8,
    )
    assert ref["method"] == "quad"
    for name in RELATIVE:
        assert evaluate(dvh, name) == pytest.approx(ref["metrics"][name], rel=0.03), (
            name
        )
