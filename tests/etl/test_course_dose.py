"""Course dose: resampling and physical / EQD2 sums against analytic plans."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from etl.dicom.rtstruct import Roi, StructureSet
from etl.dose.course import (
    BeamDose,
    PlanDose,
    alpha_beta_for,
    sum_beams,
    sum_course,
)
from etl.dose.grid import DoseGrid
from etl.dose.metrics import evaluate
from etl.dose.resample import resample_to, union_grid
from etl.dose.structures import structure_dvhs
from etl.errors import CourseDoseError
from tests.etl._dose_helpers import cube_contours

E = np.eye(3)
FRAME = "1.2.3.77"


def field(origin, shape, spacing, fn, *, frame=FRAME, uid="1.9"):
    """A grid (k, j, i) holding fn(x, y, z) at its voxel centres (axis-aligned)."""
    nk, nj, ni = shape
    o = np.asarray(origin, float)
    x = o[0] + spacing[0] * np.arange(ni)
    y = o[1] + spacing[1] * np.arange(nj)
    z = o[2] + spacing[2] * np.arange(nk)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    return DoseGrid(
        np.asarray(fn(xx, yy, zz), float), o, E[0], E[1], E[2], tuple(spacing),
        frame_of_reference_uid=frame, sop_instance_uid=uid,
    )  # fmt: skip


def plan_a(x, y, z):  # 50 Gy at x = 20 mm, 0.5 Gy/mm along x
    return 50.0 + 0.5 * (x - 20.0) + 0 * y + 0 * z


def plan_b(x, y, z):  # a boost: 10 Gy at y = 20 mm, 0.2 Gy/mm along y
    return 10.0 + 0.2 * (y - 20.0) + 0 * x + 0 * z


def _eqd2(d, n, ab):
    return d * (d / n + ab) / (2.0 + ab)


def test_uniform_two_plans_physical_and_eqd2_hand_values():
    a = field((0, 0, 0), (10, 10, 10), (2, 2, 2), lambda x, y, z: 50.0 + 0 * x)
    b = field((1, 1, 1), (6, 6, 6), (3, 3, 3), lambda x, y, z: 10.0 + 0 * x)
    course = sum_course([PlanDose(a, 25, "A"), PlanDose(b, 5, "B")], [3.0])
    inside = course.physical.interpolate(np.array([[8.0, 8.0, 8.0]]))[0][0]
    assert inside == pytest.approx(60.0)
    # 50 Gy / 25 and 10 Gy / 5 at alpha/beta 3: 50 * 5 / 5 + 10 * 5 / 5 = 60
    assert course.eqd2[3.0].interpolate(np.array([[8.0, 8.0, 8.0]]))[0][0] == (
        pytest.approx(60.0)
    )
    # non-trivial: 60 Gy / 30 + 16 Gy / 2 -> 60 + 16 * (8 + 3) / 5 = 95.2 (a/b 3),
    # 60 + 16 * 18 / 12 = 84 (a/b 10)
    a60 = replace(a, dose_gy=np.full(a.shape, 60.0))
    b16 = replace(b, dose_gy=np.full(b.shape, 16.0))
    c2 = sum_course([PlanDose(a60, 30, "A"), PlanDose(b16, 2, "B")], [3.0, 10.0])
    at = np.array([[9.0, 9.0, 9.0]])
    assert c2.eqd2[3.0].interpolate(at)[0][0] == pytest.approx(95.2)
    assert c2.eqd2[10.0].interpolate(at)[0][0] == pytest.approx(84.0)
    assert c2.physical.interpolate(at)[0][0] == pytest.approx(76.0)


def test_union_grid_and_offset_resampling_exact_for_linear_fields():
    a = field((0, 0, 0), (12, 14, 16), (2, 2, 2), plan_a)
    b = field((3.3, -1.7, 2.9), (9, 11, 7), (2.5, 3.0, 3.5), plan_b)
    base = union_grid([a, b])
    assert base.spacing_mm == a.spacing_mm
    corner_b = b.origin_mm + (np.array(b.shape[::-1]) - 1) * b.spacing_mm
    assert np.all(base.origin_mm <= b.origin_mm)
    top = base.origin_mm + (np.array(base.shape[::-1]) - 1) * 2.0
    assert np.all(top >= corner_b)
    got = resample_to(b, base)
    # voxel centres of the union grid strictly inside b's voxel centres: exact
    zs = base.origin_mm[2] + 2.0 * np.arange(base.shape[0])
    ys = base.origin_mm[1] + 2.0 * np.arange(base.shape[1])
    xs = base.origin_mm[0] + 2.0 * np.arange(base.shape[2])
    zz, yy, xx = np.meshgrid(zs, ys, xs, indexing="ij")
    lo, hi = b.origin_mm, corner_b
    inside = (
        (xx >= lo[0]) & (xx <= hi[0]) & (yy >= lo[1]) & (yy <= hi[1])
        & (zz >= lo[2]) & (zz <= hi[2])
    )  # fmt: skip
    assert inside.sum() > 100
    np.testing.assert_allclose(got[inside], plan_b(xx, yy, zz)[inside], atol=1e-9)
    far = (xx < lo[0] - 1.25) | (xx > hi[0] + 1.25)
    assert np.all(got[far] == 0.0)


def test_resampling_matches_the_grid_interpolator_on_random_dose():
    rng = np.random.default_rng(7)
    src = field((0, 0, 0), (7, 8, 9), (2, 2.5, 3), lambda x, y, z: 0 * x)
    src = replace(src, dose_gy=rng.uniform(0, 70, src.shape))
    target = field((0.9, 1.3, -0.4), (6, 7, 8), (1.7, 2.1, 2.6), lambda x, y, z: 0 * x)
    got = resample_to(src, target)
    k, j, i = np.meshgrid(*(np.arange(n) for n in target.shape), indexing="ij")
    idx = np.column_stack([i.ravel(), j.ravel(), k.ravel()]) * target.spacing_mm
    ref, inside = src.interpolate(target.to_patient_mm(idx))
    ref = np.where(inside, ref, 0.0).reshape(target.shape)
    np.testing.assert_allclose(got, ref, atol=1e-9)


def test_reversed_frame_order_is_resampled():
    a = field((0, 0, 0), (10, 10, 10), (2, 2, 2), plan_a)
    flipped = replace(
        a, dose_gy=a.dose_gy[::-1].copy(), origin_mm=np.array([0.0, 0.0, 18.0]),
        slice_dir=-E[2],
    )  # fmt: skip
    np.testing.assert_allclose(resample_to(flipped, a), a.dose_gy, atol=1e-12)


def _cube_dvhs(grid, names=None):
    ss = StructureSet(
        "1.2.3", FRAME, (Roi(1, "Cube", "CLOSED_PLANAR", tuple(cube_contours(
            5.0, 1.0, (20.0, 20.0, 20.0))), "ORGAN"),)
    )  # fmt: skip
    (done,) = structure_dvhs(ss, grid, names=names)
    assert done.dvh is not None
    return done.dvh


def analytic_truth(n_a=25, n_b=5, ab=3.0, n=200):
    """Metrics of the 10 mm cube centred at (20, 20, 20) by dense midpoint sampling."""
    t = 15.0 + (np.arange(n) + 0.5) * 10.0 / n
    x, y = np.meshgrid(t, t, indexing="ij")  # dose is independent of z
    da, db = plan_a(x, y, 0.0), plan_b(x, y, 0.0)
    phys = (da + db).ravel()
    eqd2 = (_eqd2(da, n_a, ab) + _eqd2(db, n_b, ab)).ravel()
    out = {}
    for label, d in (("physical", phys), ("eqd2", eqd2)):
        out[label] = {
            "Mean[Gy]": d.mean(),
            "D50%[Gy]": np.percentile(d, 50),
            "D95%[Gy]": np.percentile(d, 5),
            "D2%[Gy]": np.percentile(d, 98),
        }
    return out


def course_accuracy():
    """Largest relative error of the course metrics on the analytic two-plan phantom."""
    a = field((1, 1, 1), (20, 20, 20), (2, 2, 2), plan_a, uid="1.1")
    b = field((2.3, 0.6, 1.9), (13, 15, 14), (2.5, 2.75, 3.0), plan_b, uid="1.2")
    course = sum_course([PlanDose(a, 25, "A"), PlanDose(b, 5, "B")], [3.0])
    truth = analytic_truth()
    errors = {}
    for label, grid in (("physical", course.physical), ("eqd2", course.eqd2[3.0])):
        dvh = _cube_dvhs(grid)
        for metric, value in truth[label].items():
            errors[f"{label} {metric}"] = abs(evaluate(dvh, metric) / value - 1.0)
    return errors


def test_course_dvh_metrics_match_the_analytic_two_plan_phantom():
    truth = analytic_truth()
    # hand values: mean physical 60; EQD2 mean = E[Da^2]/125 + 0.6 E[Da] +
    # E[Db^2]/25 + 0.6 E[Db] with Da ~ U(47.5, 52.5), Db ~ U(9, 11)
    mean_eqd2 = (2500 + 25 / 12) / 125 + 30 + (100 + 4 / 12) / 25 + 6
    assert truth["physical"]["Mean[Gy]"] == pytest.approx(60.0, abs=1e-6)
    assert truth["eqd2"]["Mean[Gy]"] == pytest.approx(mean_eqd2, abs=1e-4)
    errors = course_accuracy()
    assert max(errors.values()) < 5e-4, errors


def test_different_frames_are_not_summed_and_both_files_are_named():
    a = field((0, 0, 0), (4, 4, 4), (2, 2, 2), plan_a)
    b = replace(a, frame_of_reference_uid="9.9")
    with pytest.raises(CourseDoseError, match=r"b\.dcm.*9\.9.*a\.dcm"):
        sum_course([PlanDose(a, 25, "a.dcm"), PlanDose(b, 5, "b.dcm")])


def test_rotated_grid_is_refused_naming_the_file():
    a = field((0, 0, 0), (4, 4, 4), (2, 2, 2), plan_a)
    b = replace(a, row_dir=E[1], col_dir=E[0], slice_dir=-E[2])
    with pytest.raises(CourseDoseError, match=r"rot\.dcm: ImageOrientationPatient"):
        sum_course([PlanDose(a, 25, "a.dcm"), PlanDose(b, 5, "rot.dcm")])


def test_eqd2_without_fractions_is_refused():
    a = field((0, 0, 0), (4, 4, 4), (2, 2, 2), plan_a)
    with pytest.raises(CourseDoseError, match=r"b\.dcm: number of fractions"):
        sum_course([PlanDose(a, 25, "a.dcm"), PlanDose(a, None, "b.dcm")], [3.0])
    assert sum_course([PlanDose(a, None, "a"), PlanDose(a, None, "b")]).eqd2 == {}


def test_alpha_beta_per_structure():
    assert alpha_beta_for("PTV_Boost", 3.0, {"ptv_boost": 10.0}) == 10.0
    assert alpha_beta_for("Rectum", 3.0, {"ptv_boost": 10.0}) == 3.0


def test_beam_sum_complete_and_held():
    a = field((0, 0, 0), (4, 4, 4), (2, 2, 2), lambda x, y, z: 1.0 + 0 * x)
    beams = [BeamDose(replace(a, sop_instance_uid=f"b{n}"), "P", n, f"b{n}.dcm")
             for n in (1, 2, 3)]  # fmt: skip
    done = sum_beams(beams, (1, 2, 3))
    assert done.grid is not None and done.reason == ""
    assert float(done.grid.dose_gy.max()) == pytest.approx(3.0)
    assert str(done.grid.summation_type) == "PLAN"
    held = sum_beams(beams[:2], (1, 2, 3))
    assert held.grid is None
    assert "beam 3 of 3 missing" in held.reason
    assert "b1.dcm" in held.reason
    assert "not available" in sum_beams(beams, None).reason
    assert "given twice" in sum_beams([*beams, beams[0]], (1, 2, 3)).reason
