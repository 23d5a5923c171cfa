"""Analytic phantoms: truth against independent estimates; DICOM read with pydicom."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from etl.phantom.geometry import (
    PhantomSpecError,
    Solid,
    polygon_area_mm2,
    section_polygon,
)
from etl.phantom.spec import parse_spec, spec_from_options
from etl.phantom.truth import LinearDoseField, cumulative_volume_mm3, roi_truth
from etl.phantom.write import write_phantom

CASES = [
    ("sphere", "z", (0.0, 0.0, 1.0)),
    ("cylinder", "z", (0.0, 0.0, 1.0)),
    ("cylinder", "y", (0.0, 0.0, 1.0)),
    ("cylinder", "z", (0.0, 1.0, 0.0)),
    ("cone", "z", (0.0, 0.0, 1.0)),
    ("cone", "z", (0.0, 1.0, 0.0)),
    ("cone", "y", (0.0, 0.0, 1.0)),
    ("cone", (1.0, 2.0, 3.0), (0.3, -0.5, 1.0)),
    ("cylinder", (1.0, -1.0, 0.5), (1.0, 0.2, 0.0)),
]


# --- truth -------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "axis", "gradient"), CASES)
def test_truth_matches_monte_carlo(kind, axis, gradient):
    """Volume, mean, percentiles and extremes against 600k random points."""
    solid = Solid.make(kind, 24.0, axis=axis, centre_mm=(1.0, -2.0, 3.0))
    fld = LinearDoseField.from_point(16.0, solid.centre_mm, gradient)
    truth = roi_truth(solid, fld)
    rng = np.random.default_rng(20150435)
    lo, hi = solid.bounds_mm()
    pts = lo + (hi - lo) * rng.random((600_000, 3))
    inside = solid.contains(pts)
    box_cc = float(np.prod(hi - lo)) / 1000.0
    frac = inside.mean()
    volume_cc = frac * box_cc
    se_cc = box_cc * math.sqrt(frac * (1 - frac) / len(pts))
    assert abs(truth.volume_cc - volume_cc) < 4 * se_cc
    dose = fld.dose_at(pts[inside])
    assert truth.mean_gy == pytest.approx(dose.mean(), abs=0.05)
    for name, pct in (("D95%[Gy]", 5), ("D5%[Gy]", 95), ("D99%[Gy]", 1)):
        assert truth.metrics[name] == pytest.approx(np.percentile(dose, pct), abs=0.06)
    # Sampled extremes lie inside the exact ones (cone apices are rarely sampled).
    assert truth.min_gy <= dose.min() < truth.min_gy + 1.0
    assert truth.max_gy - 1.0 < dose.max() <= truth.max_gy


def test_sphere_closed_forms():
    """Half the sphere lies above its centre; a cap of height h: pi h^2 (3R - h) / 3."""
    solid = Solid.make("sphere", 20.0, centre_mm=(5.0, 0.0, 0.0))
    fld = LinearDoseField.from_point(30.0, (5.0, 0.0, 0.0), (2.0, 0.0, 0.0))
    assert cumulative_volume_mm3(solid, fld, 30.0) == pytest.approx(
        2.0 / 3.0 * math.pi * 1000.0, rel=1e-12
    )
    # 4 Gy above the centre = 2 mm: a cap of height 8 mm.
    assert cumulative_volume_mm3(solid, fld, 34.0) == pytest.approx(
        math.pi * 64 * (30 - 8) / 3, rel=1e-12
    )
    t = roi_truth(solid, fld)
    assert t.volume_cc == pytest.approx(4 / 3 * math.pi, rel=1e-12)
    assert (t.min_gy, t.mean_gy, t.max_gy) == pytest.approx((10.0, 30.0, 50.0))


def test_cylinder_along_gradient_is_linear():
    """Dx% of a cylinder along the gradient is Dmin + (1 - x) (Dmax - Dmin)."""
    solid = Solid.make("cylinder", 24.0)
    fld = LinearDoseField.from_point(16.0, (0, 0, 0), (0, 0, 1.0))
    t = roi_truth(solid, fld)
    assert t.metrics["D95%[Gy]"] == pytest.approx(4.0 + 0.05 * 24.0, abs=1e-9)
    assert t.metrics["D1%[Gy]"] == pytest.approx(4.0 + 0.99 * 24.0, abs=1e-9)
    cc003 = 30.0 / (math.pi * 144.0)  # mm of height holding 0.03 cc
    assert t.metrics["D0.03cc[Gy]"] == pytest.approx(28.0 - cc003, abs=1e-9)
    assert t.method == "closed_form"


def test_quadrature_agrees_with_closed_form():
    """A hair's tilt of the axis sends the cylinder through quad; nothing moves."""
    fld = LinearDoseField.from_point(16.0, (0, 0, 0), (0, 1.0, 0))
    exact = roi_truth(Solid.make("cylinder", 24.0, axis="z"), fld)
    tilted = roi_truth(Solid.make("cylinder", 24.0, axis=(0, 1e-7, 1)), fld)
    assert exact.method == "closed_form"
    assert tilted.method == "quad"
    for key, value in exact.metrics.items():
        assert tilted.metrics[key] == pytest.approx(value, abs=1e-5)
    a = Solid.make("cylinder", 24.0, axis="z")
    b = Solid.make("cylinder", 24.0, axis=(0, 1e-7, 1))
    for dose in np.linspace(3.0, 29.0, 27):
        va = cumulative_volume_mm3(a, fld, dose)
        assert cumulative_volume_mm3(b, fld, dose) == pytest.approx(va, abs=1e-3)


def test_cone_along_gradient_closed_form():
    """Cone with apex up in +z: V(z >= t) = V (H - t)^3 / (2H)^3 above the base."""
    solid = Solid.make("cone", 20.0, height_mm=30.0)
    fld = LinearDoseField(0.0, (0.0, 0.0, 1.0))  # dose = z
    for t in (-15.0, -5.0, 0.0, 10.0, 15.0):
        expected = solid.volume_mm3() * ((15.0 - t) / 30.0) ** 3
        assert cumulative_volume_mm3(solid, fld, t) == pytest.approx(expected, abs=1e-9)
    assert roi_truth(solid, fld).mean_gy == pytest.approx(-15.0 + 30.0 / 4.0)


def test_uniform_field():
    t = roi_truth(Solid.make("cone", 10.0), LinearDoseField(12.5))
    assert all(v == 12.5 for v in t.metrics.values() if v is not None)
    assert t.metrics["D0.03cc[Gy]"] == 12.5


def test_small_structure_has_no_d003cc():
    t = roi_truth(Solid.make("sphere", 3.0), LinearDoseField(0.0, (0, 0, 1.0)))
    assert t.volume_cc < 0.03
    assert t.metrics["D0.03cc[Gy]"] is None


# --- contours ----------------------------------------------------------------------


def _surface_distance(solid: Solid, pts: np.ndarray) -> np.ndarray:
    d = pts - np.asarray(solid.centre_mm)
    if solid.kind == "sphere":
        return np.abs(np.linalg.norm(d, axis=1) - solid.radius_mm)
    a = np.asarray(solid.axis)
    s = d @ a
    perp = np.linalg.norm(d - s[:, None] * a, axis=1)
    half = solid.height_mm / 2
    cap = np.abs(np.abs(s) - half) if solid.kind == "cylinder" else np.abs(s + half)
    r = (
        solid.radius_mm
        if solid.kind == "cylinder"
        else solid.radius_mm * (half - s) / (2 * half)
    )
    # On a face, or on the lateral surface measured perpendicular to the axis.
    return np.minimum(cap, np.abs(perp - r))


@pytest.mark.parametrize(("kind", "axis", "gradient"), CASES)
def test_contour_vertices_on_surface(kind, axis, gradient):
    del gradient
    solid = Solid.make(kind, 24.0, axis=axis, centre_mm=(0.5, 0.25, 0.3))
    for z in np.arange(-13.5, 14.0, 1.5):
        poly = section_polygon(solid, float(z))
        if poly is None:
            continue
        assert np.all(poly[:, 2] == z)
        assert np.max(_surface_distance(solid, poly)) < 1e-6
        assert polygon_area_mm2(poly) > 0  # counter-clockwise


def test_sphere_section_area():
    solid = Solid.make("sphere", 24.0)
    for z in (0.0, 5.0, 11.0, 11.9):
        poly = section_polygon(solid, z, tolerance_mm=1e-4)
        r = math.sqrt(144.0 - z * z)
        exact = math.pi * r * r
        # Inscribed polygon whose edges stay within 1e-4 mm of the circle: the missing
        # area is about (2/3) * perimeter * sagitta, i.e. 4 tol / (3 r) of the disc.
        assert 0 <= exact - polygon_area_mm2(poly) < 1.1 * 4e-4 / (3 * r) * exact
    assert section_polygon(solid, 12.0) is None  # tangent point
    assert section_polygon(solid, 12.5) is None


def test_cylinder_across_planes_is_rectangle():
    solid = Solid.make("cylinder", 24.0, axis="y")
    poly = section_polygon(solid, 7.0)
    width = 2 * math.sqrt(144 - 49)
    assert polygon_area_mm2(poly) == pytest.approx(width * 24.0, rel=1e-6)
    assert np.ptp(poly[:, 1]) == pytest.approx(24.0, abs=1e-9)
    # A plane tangent to the lateral surface cuts a segment of zero area: no contour.
    assert section_polygon(solid, 12.0) is None
    shifted = Solid.make("cylinder", 24.0, axis="y", centre_mm=(0.5, 0.5, 0.5))
    assert section_polygon(shifted, -11.5) is None


# --- DICOM -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom")
    spec = parse_spec(
        {
            "contour_spacing_mm": 2.0,
            "dose_grid_mm": 2.5,
            "rois": [
                {"name": "PTV", "shape": "sphere", "size_mm": 16,
                 "offset_mm": [1, 2, 3], "interpreted_type": "PTV"},
                {"name": "Cord", "shape": "cylinder", "size_mm": 8, "height_mm": 20,
                 "offset_mm": [-10, 5, 0], "axis": "y"},
                {"name": "Cone", "shape": "cone", "size_mm": 10,
                 "offset_mm": [12, 0, 2]},
            ],
            "dose": [
                {"dose_gy": 20, "gradient": [1, 1, 0], "gradient_gy_per_mm": 0.3},
                {"dose_gy": 2, "at_mm": [0, 0, 0], "gradient": "z",
                 "gradient_gy_per_mm": 0.1},
            ],
            "plan": {"fractions": 5, "beams": 3},
        }
    )  # fmt: skip
    truth = write_phantom(out, spec, patient_id="PH01", seed=7)
    return out, spec, truth


def test_cross_references(written):
    out, _, truth = written
    ct = [pydicom.dcmread(out / name) for name in truth["files"]["ct"]]
    rs = pydicom.dcmread(out / "RTSTRUCT.dcm")
    rp = pydicom.dcmread(out / "RTPLAN.dcm")
    rd = pydicom.dcmread(out / "RTDOSE.dcm")
    everything = [*ct, rs, rp, rd]
    assert {d.StudyInstanceUID for d in everything} == {
        truth["uids"]["study_instance_uid"]
    }
    assert {d.FrameOfReferenceUID for d in everything} == {
        truth["uids"]["frame_of_reference_uid"]
    }
    assert {d.PatientID for d in everything} == {"PH01"}
    assert len({d.SOPInstanceUID for d in everything}) == len(everything)
    assert [d.file_meta.MediaStorageSOPInstanceUID for d in everything] == [
        d.SOPInstanceUID for d in everything
    ]
    # RTSTRUCT -> CT
    frame = rs.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == truth["uids"]["frame_of_reference_uid"]
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == ct[0].SeriesInstanceUID
    assert [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence] == [
        d.SOPInstanceUID for d in ct
    ]
    ct_z = {d.SOPInstanceUID: float(d.ImagePositionPatient[2]) for d in ct}
    for rc in rs.ROIContourSequence:
        for c in rc.ContourSequence:
            ref = c.ContourImageSequence[0].ReferencedSOPInstanceUID
            assert ct_z[ref] == pytest.approx(float(c.ContourData[2]))
    # RTPLAN -> RTSTRUCT, RTDOSE -> RTPLAN
    assert rp.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == (
        rs.SOPInstanceUID
    )
    assert rd.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp.SOPInstanceUID
    assert rd.ReferencedRTPlanSequence[0].ReferencedSOPClassUID == rp.SOPClassUID


def test_structure_set_content(written):
    out, spec, _ = written
    rs = pydicom.dcmread(out / "RTSTRUCT.dcm")
    assert [r.ROIName for r in rs.StructureSetROISequence] == ["PTV", "Cord", "Cone"]
    obs = {
        o.ReferencedROINumber: o.RTROIInterpretedType
        for o in rs.RTROIObservationsSequence
    }
    assert obs == {1: "PTV", 2: "ORGAN", 3: "ORGAN"}
    for roi, rc in zip(spec.rois, rs.ROIContourSequence, strict=True):
        solid = roi.solid()
        zs = set()
        for c in rc.ContourSequence:
            assert c.ContourGeometricType == "CLOSED_PLANAR"
            pts = np.asarray(c.ContourData, dtype=float).reshape(-1, 3)
            assert len(pts) == c.NumberOfContourPoints
            assert np.max(_surface_distance(solid, pts)) < 2e-5  # 5-decimal DS
            zs.add(float(pts[0, 2]))
        steps = np.diff(sorted(zs))
        assert np.allclose(steps, 2.0)
        assert all(abs((z - 1.0) / 2.0 - round((z - 1.0) / 2.0)) < 1e-9 for z in zs)


def test_dose_equals_field_at_voxel_centres(written):
    out, spec, truth = written
    rd = pydicom.dcmread(out / "RTDOSE.dcm")
    assert (rd.DoseUnits, rd.DoseType, rd.DoseSummationType) == (
        "GY",
        "PHYSICAL",
        "PLAN",
    )
    assert rd.NumberOfFrames == len(rd.GridFrameOffsetVector) > 1
    assert float(rd.GridFrameOffsetVector[0]) == 0.0
    dose = rd.pixel_array.astype(float) * float(rd.DoseGridScaling)
    x0, y0, z0 = (float(v) for v in rd.ImagePositionPatient)
    dy, dx = (float(v) for v in rd.PixelSpacing)
    zs = z0 + np.asarray(rd.GridFrameOffsetVector, dtype=float)
    ys = y0 + dy * np.arange(rd.Rows)
    xs = x0 + dx * np.arange(rd.Columns)
    zz, yy, xx = np.meshgrid(zs, ys, xs, indexing="ij")
    # Independent: the two fields of the spec, evaluated by hand.
    expected = 20 + 0.3 / math.sqrt(2) * ((xx - 1) + (yy - 2)) + 2 + 0.1 * zz
    assert np.max(np.abs(dose - expected)) < 1e-6
    # The grid covers every ROI with at least one voxel of margin.
    for roi in spec.rois:
        lo, hi = roi.solid().bounds_mm()
        assert xs[0] <= lo[0] - dx + 1e-9
        assert xs[-1] >= hi[0] + dx - 1e-9
        assert zs[0] <= lo[2] - dx + 1e-9
        assert zs[-1] >= hi[2] + dx - 1e-9
    assert truth["dose_field"]["constant_gy"] == pytest.approx(
        22 - 0.3 / math.sqrt(2) * 3
    )


def test_plan_content(written):
    out, _, truth = written
    rp = pydicom.dcmread(out / "RTPLAN.dcm")
    ref = rp.DoseReferenceSequence[0]
    assert ref.ReferencedROINumber == 1
    assert ref.DoseReferenceType == "TARGET"
    assert float(ref.TargetPrescriptionDose) == pytest.approx(22.3, abs=1e-6)
    assert truth["prescription"]["prescription_gy"] == pytest.approx(22.3)
    group = rp.FractionGroupSequence[0]
    assert group.NumberOfFractionsPlanned == 5
    assert group.NumberOfBeams == len(rp.BeamSequence) == 3
    assert {b.RadiationType for b in rp.BeamSequence} == {"PHOTON"}
    assert sorted(
        float(b.ControlPointSequence[0].GantryAngle) for b in rp.BeamSequence
    ) == [
        0.0,
        120.0,
        240.0,
    ]


def test_truth_json(written):
    out, _, truth = written
    on_disk = json.loads((out / "truth.json").read_text())
    assert on_disk == json.loads(json.dumps(truth))
    assert "true continuous solid" in on_disk["convention"]
    ptv = on_disk["rois"][0]
    assert ptv["volume_cc"] == pytest.approx(4 / 3 * math.pi * 8**3 / 1000)
    # Contour stack with half-spacing caps approximates the solid (midpoint rule).
    assert ptv["contour_stack_volume_cc"] == pytest.approx(ptv["volume_cc"], rel=0.02)
    dvh = ptv["dvh"]
    assert dvh["volume_cc"][0] == pytest.approx(ptv["volume_cc"])
    assert np.all(np.diff(dvh["volume_cc"]) <= 1e-12)
    assert set(ptv["metrics"]) >= {
        "D99%[Gy]",
        "D95%[Gy]",
        "D5%[Gy]",
        "D1%[Gy]",
        "D0.03cc[Gy]",
    }


def test_seed_makes_uids_reproducible(tmp_path):
    spec = spec_from_options("sphere", 6, contour_spacing_mm=2, dose_grid_mm=3)
    a = write_phantom(tmp_path / "a", spec, seed=1)["uids"]
    b = write_phantom(tmp_path / "b", spec, seed=1)["uids"]
    c = write_phantom(tmp_path / "c", spec, seed=2)["uids"]
    assert a == b
    assert not set(a.values()) & set(c.values())


def test_negative_dose_near_roi_is_refused(tmp_path):
    spec = spec_from_options(
        "sphere", 24, dose_gy=5, gradient="x", gradient_gy_per_mm=1
    )
    with pytest.raises(PhantomSpecError, match="negative"):
        write_phantom(tmp_path, spec)


# --- spec and CLI ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"shape": "cube", "size_mm": 24}, "shape"),
        ({"shape": "sphere", "size_mm": -1}, "size_mm"),
        ({"shape": "sphere", "size_mm": 24, "offset_mm": "1,2"}, "offset_mm"),
        (
            {"shape": "sphere", "size_mm": 24, "contour_spacing_mm": 0},
            "contour_spacing_mm",
        ),
        ({"shape": "sphere", "size_mm": 24, "dose_grid_mm": -2}, "dose_grid_mm"),
        ({"shape": "sphere", "size_mm": 24, "gradient": "1,0"}, "gradient"),
        ({"shape": "cylinder", "size_mm": 24, "axis": "0,0,0"}, "axis"),
    ],
)
def test_bad_options(kwargs, field):
    with pytest.raises(PhantomSpecError, match=field):
        spec_from_options(**kwargs)


def test_bad_spec_names_field():
    good = {"name": "A", "shape": "sphere", "size_mm": 5}
    with pytest.raises(PhantomSpecError, match="duplicate ROI names: A"):
        parse_spec({"rois": [good, good], "dose": [{"dose_gy": 1}]})
    with pytest.raises(PhantomSpecError, match=r"rois\.0\.colour"):
        parse_spec({"rois": [{**good, "colour": 1}], "dose": [{"dose_gy": 1}]})
    with pytest.raises(PhantomSpecError, match=r"plan\.target"):
        parse_spec(
            {"rois": [good], "dose": [{"dose_gy": 1}], "plan": {"target": "B"}}
        ).target_roi()


def test_multi15_spec_is_consistent():
    text = resources.files("etl").joinpath("data/phantom_multi15.json").read_text()
    spec = parse_spec(text)
    assert len(spec.rois) == 15
    names = {r.name for r in spec.rois}
    assert {
        "BODY",
        "PTV",
        "Heart",
        "Lung_L",
        "Lung_R",
        "SpinalCord",
        "Esophagus",
    } <= names
    body = next(r for r in spec.rois if r.interpreted_type == "EXTERNAL").solid()
    rng = np.random.default_rng(15)
    fld = spec.dose_field()
    for roi in spec.rois:
        solid = roi.solid()
        lo, hi = solid.bounds_mm()
        pts = lo + (hi - lo) * rng.random((20_000, 3))
        pts = pts[solid.contains(pts)]
        assert body.contains(pts).all(), roi.name  # every organ inside the body
        assert fld.dose_at(pts).min() > 0
    assert spec.target_roi().name == "PTV"


def test_cli_phantom(tmp_path):
    from rtcohort.cli import app

    runner = CliRunner()
    out = tmp_path / "ph"
    result = runner.invoke(
        app,
        [
            "phantom", str(out), "--shape", "cone", "--size-mm", "12",
            "--contour-spacing-mm", "2", "--dose-grid-mm", "3", "--dose-gy", "16",
            "--gradient", "0,1,1", "--gradient-gy-per-mm", "0.5", "--seed", "3",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    truth = json.loads((out / "truth.json").read_text())
    assert truth["dose_field"]["gradient_gy_per_mm"] == pytest.approx(
        [0.0, 0.5 / math.sqrt(2), 0.5 / math.sqrt(2)]
    )
    assert truth["rois"][0]["mean_gy"] == pytest.approx(16 - 0.5 / math.sqrt(2) * 3)
    assert (out / "RTDOSE.dcm").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--shape", "cube", "--size-mm", "24"],
        ["--shape", "sphere", "--size-mm", "-24"],
        ["--shape", "sphere", "--size-mm", "24", "--offset-mm", "1,a,2"],
        ["--shape", "sphere", "--size-mm", "24", "--contour-spacing-mm", "0"],
        ["--shape", "sphere"],
        [],
        ["--spec", "missing.json"],
    ],
)
def test_cli_phantom_bad_input(tmp_path: Path, args):
    from rtcohort.cli import app

    result = CliRunner().invoke(app, ["phantom", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert "rtcohort phantom:" in result.stderr
    assert "Traceback" not in result.output
