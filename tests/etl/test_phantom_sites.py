"""Conformal dose, the numerical (RQMC) truth, and the four site phantoms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import optimize
from scipy.special import ndtr

from etl.dicom.rtdose import read_rtdose
from etl.dicom.rtstruct import read_rtstruct
from etl.dose.dvh import compute_dvh
from etl.dose.metrics import evaluate
from etl.phantom.conformal import PENUMBRA_SIGMAS, ConformalDose, DoseModel
from etl.phantom.geometry import PhantomSpecError, Solid
from etl.phantom.sites import site_spec
from etl.phantom.spec import parse_spec
from etl.phantom.truth import LinearDoseField, cumulative_volume_mm3, roi_truth
from etl.phantom.truth_numeric import numeric_roi_truth
from etl.phantom.write import write_phantom

LINEAR_CASES = [
    ("sphere", "z", (0.0, 0.0, 1.0)),
    ("cylinder", (1.0, 2.0, 3.0), (0.3, -0.2, 0.5)),
    ("cone", "y", (0.1, 0.7, 0.0)),
    ("ellipsoid", (1.0, 0.0, 1.0), (0.0, 0.4, 0.4)),
]


@pytest.mark.parametrize(("kind", "axis", "gradient"), LINEAR_CASES)
def test_rqmc_truth_matches_closed_form_in_linear_fields(kind, axis, gradient):
    solid = Solid.make(kind, 30.0, height_mm=50.0, centre_mm=(5, -3, 2), axis=axis)
    fld = LinearDoseField.from_point(30.0, (0.0, 0.0, 0.0), gradient)
    exact = roi_truth(solid, fld)
    num = numeric_roi_truth([solid], fld.dose_at, samples=16_384, replicates=8)
    assert num.method == "rqmc"
    assert num.volume_cc == pytest.approx(exact.volume_cc, rel=1e-12)
    for name in ("Mean[Gy]", "D95%[Gy]", "D5%[Gy]", "D0.03cc[Gy]"):
        bound = num.uncertainty[name]
        # three standard errors of the replicates, with a floor of 0.02 Gy
        assert abs(num.metrics[name] - exact.metrics[name]) <= max(bound, 0.02), name
    v_exact = np.array(exact.dvh_volume_cc)
    v_num = np.interp(exact.dvh_dose_gy, num.dvh_dose_gy, num.dvh_volume_cc)
    assert np.max(np.abs(v_num - v_exact)) < 2e-3 * exact.volume_cc


def _lens_mm3(r1: float, r2: float, dist: float) -> float:
    """Volume of the intersection of two balls (closed form)."""
    if dist >= r1 + r2:
        return 0.0
    if dist <= abs(r1 - r2):
        return 4.0 / 3.0 * math.pi * min(r1, r2) ** 3
    return (
        math.pi
        * (r1 + r2 - dist) ** 2
        * (dist**2 + 2 * dist * (r1 + r2) - 3 * (r1 - r2) ** 2)
        / (12 * dist)
    )


def test_rqmc_truth_of_a_sphere_in_a_radial_conformal_dose():
    # Without a tail, the conformal dose depends on |x - c| only: V(D) is the lens
    # of the organ's ball and the ball where the dose is >= D.
    target = Solid.make("sphere", 40.0)
    comp = ConformalDose(target, 60.0, penumbra_mm=8.0, tail_fraction=0.0)
    organ = Solid.make("sphere", 30.0, centre_mm=(0.0, 30.0, 0.0))
    num = numeric_roi_truth([organ], DoseModel(LinearDoseField(0.0), (comp,)).dose_at)
    sigma = 8.0 / PENUMBRA_SIGMAS
    for dose in (5.0, 20.0, 40.0, 55.0):
        d = optimize.brentq(
            lambda x, dose=dose: 60.0 * ndtr(-(x - 2 * sigma) / sigma) - dose, -20, 80
        )
        exact_cc = _lens_mm3(15.0, 20.0 + d, 30.0) / 1000.0
        got = float(np.interp(dose, num.dvh_dose_gy, num.dvh_volume_cc))
        assert got == pytest.approx(
            exact_cc, abs=max(num.uncertainty["dvh_volume_cc"], 1e-3)
        )


def test_conformal_profile():
    target = Solid.make("sphere", 40.0)
    comp = ConformalDose(target, 50.0, penumbra_mm=8.0, tail_fraction=0.2, tail_mm=20)
    pts = np.array([[0.0, 0, 0], [20.0, 0, 0], [0, 0, 100.0]])
    dose = comp.dose_at(pts)
    assert dose[0] == pytest.approx(50.0, abs=1e-6)
    sigma = 8.0 / PENUMBRA_SIGMAS
    assert dose[1] == pytest.approx(50 * (0.8 * ndtr(2.0) + 0.2))
    assert dose[2] == pytest.approx(
        50 * (0.8 * ndtr(-(80 - 2 * sigma) / sigma) + 0.2 * math.exp(-4))
    )


def test_conformal_dose_on_a_union_falls_off_from_the_nearest_part():
    # Two disjoint balls as one target: the dose at a point is the profile at its
    # distance from the nearer ball (the exact distance to the union of balls).
    spec = parse_spec(
        {
            "rois": [
                {"name": "PTVp", "shape": "sphere", "size_mm": 40},
                {"name": "PTVn", "shape": "sphere", "size_mm": 20,
                 "offset_mm": [60, 0, 0]},
            ],
            "dose": [{"dose_gy": 0}],
            "unions": [{"name": "PTV", "of": ["PTVp", "PTVn"]}],
            "conformal": [{"target": "PTV", "dose_gy": 60, "penumbra_mm": 8,
                           "tail_fraction": 0.2, "tail_mm": 20}],
        }
    )  # fmt: skip
    model = spec.dose_model()
    pts = np.array([[0.0, 0, 0], [60.0, 0, 0], [40.0, 0, 0], [0, 0, 50.0]])
    sigma = 8.0 / PENUMBRA_SIGMAS

    def profile(d: float) -> float:
        return 60 * (
            0.8 * ndtr(-(d - 2 * sigma) / sigma) + 0.2 * math.exp(-max(d, 0) / 20)
        )

    # (40, 0, 0) is 20 mm from the first ball and 10 mm from the second: 10 mm
    expected = [profile(-20.0), profile(-10.0), profile(10.0), profile(30.0)]
    assert model.dose_at(pts) == pytest.approx(expected, rel=1e-12)
    assert model.describe()["conformal"][0]["more_target_centres_mm"] == [[60, 0, 0]]


def test_conformal_target_must_be_sphere_or_ellipsoid():
    spec = parse_spec(
        {
            "rois": [{"name": "PTV", "shape": "cylinder", "size_mm": 20}],
            "dose": [{"dose_gy": 0}],
            "conformal": [{"target": "PTV", "dose_gy": 60}],
        }
    )
    with pytest.raises(PhantomSpecError, match=r"conformal\.target 'PTV'"):
        spec.dose_model()


def test_union_rois_must_be_disjoint():
    spec = parse_spec(
        {
            "rois": [
                {"name": "A", "shape": "sphere", "size_mm": 20},
                {"name": "B", "shape": "sphere", "size_mm": 20, "offset_mm": [5, 0, 0]},
            ],
            "dose": [{"dose_gy": 1}],
            "unions": [{"name": "AB", "of": ["A", "B"]}],
        }
    )
    with pytest.raises(PhantomSpecError, match="unions 'AB'"):
        spec.union_parts()


SITE_CASES = [
    # site, dose, fractions, laterality, organ, metric, literature range
    ("breast", 50.0, 25, "L", "Heart", "Mean[Gy]", (1.0, 5.0)),
    ("prostate", 78.0, 39, "L", "Rectum", "V70Gy[%]", (5.0, 20.0)),
    ("lung", 60.0, 30, "L", "Lungs", "Mean[Gy]", (10.0, 20.0)),
    ("head_neck", 70.0, 35, "L", "Parotid_L", "Mean[Gy]", (15.0, 35.0)),
    ("head_neck", 70.0, 35, "R", "Parotid_L", "Mean[Gy]", (15.0, 35.0)),
    # the organs of the ~15-structure anatomy (QUANTEC and dysphagia literature)
    ("head_neck", 70.0, 35, "L", "Musc_Constrict_S", "Mean[Gy]", (40.0, 65.0)),
    ("head_neck", 70.0, 35, "R", "Larynx_SG", "Mean[Gy]", (30.0, 60.0)),
    ("head_neck", 70.0, 35, "L", "Brainstem", "Max[Gy]", (0.0, 54.0)),
    ("breast", 50.0, 25, "L", "Lung_L", "Mean[Gy]", (2.0, 8.0)),
    ("breast", 50.0, 25, "R", "Glnd_Thyroid", "Mean[Gy]", (0.0, 3.0)),
    ("prostate", 78.0, 39, "L", "PenileBulb", "Mean[Gy]", (0.0, 50.0)),
    ("lung", 60.0, 30, "R", "SpinalCord", "Max[Gy]", (0.0, 50.0)),
    # conventional lung RT treats the mediastinal nodes (QUANTEC esophagus, heart)
    ("lung", 60.0, 30, "L", "Esophagus", "Mean[Gy]", (15.0, 30.0)),
    ("lung", 60.0, 30, "R", "Esophagus", "Mean[Gy]", (15.0, 30.0)),
    ("lung", 60.0, 30, "L", "Heart", "Mean[Gy]", (5.0, 15.0)),
    # SBRT of a small peripheral lesion spares the mediastinum
    ("lung", 54.0, 3, "L", "Esophagus", "Mean[Gy]", (0.0, 10.0)),
]

#: TG-263 structures of each site (the module docstring's table).
SITE_STRUCTURES = {
    "breast": {"BODY", "CTV", "PTV", "Heart", "A_LAD", "Breast_L", "Breast_R",
               "Lung_L", "Lung_R", "Lungs", "Esophagus", "SpinalCord",
               "Glnd_Thyroid", "Humerus_L", "Humerus_R"},
    "prostate": {"BODY", "CTV", "PTV", "Rectum", "Bladder", "SeminalVes",
                 "Canal_Anal", "PenileBulb", "Urethra", "Bowel_Small",
                 "Colon_Sigmoid", "Femur_Head_L", "Femur_Head_R"},
    "head_neck": {"BODY", "PTV_High", "PTV_Low", "Parotid_L", "Parotid_R",
                  "Glnd_Submand_L", "Glnd_Submand_R", "SpinalCord", "Brainstem",
                  "Cavity_Oral", "Larynx", "Larynx_SG", "Musc_Constrict",
                  "Musc_Constrict_S", "Musc_Constrict_M", "Musc_Constrict_I"},
    "lung": {"BODY", "GTV", "CTV", "PTVp", "PTVn", "PTV", "Lung_L", "Lung_R", "Lungs",
             "Heart", "Esophagus", "SpinalCord", "Trachea", "Bronchus",
             "BrachialPlex_L", "BrachialPlex_R"},
}  # fmt: skip


@pytest.mark.parametrize("site", sorted(SITE_STRUCTURES))
@pytest.mark.parametrize("side", ["L", "R"])
def test_site_structures_are_tg263_names(site, side):
    from etl.mapping.naming import tg263_names

    spec = site_spec(site, prescription_gy=60.0, fractions=30, laterality=side,
                     rng=np.random.default_rng(5))  # fmt: skip
    names = spec.roi_names()
    assert set(names) == SITE_STRUCTURES[site]
    assert len(names) == len(set(names))
    assert set(names) - {"BODY", "PTV_High", "PTV_Low", "PTVp", "PTVn"} <= set(
        tg263_names()
    )
    kinds = {r.name: str(r.interpreted_type) for r in spec.rois}
    kinds |= {u.name: str(u.interpreted_type) for u in spec.unions}
    for target in ("GTV", "CTV", "PTV", "PTVp", "PTVn"):
        if target in kinds:
            assert kinds[target] == target[:3]
    # the constrictor thirds lie inside the whole muscle (the same axis)
    if site == "head_neck":
        whole = next(r for r in spec.rois if r.name == "Musc_Constrict")
        thirds = [r for r in spec.rois if r.name.startswith("Musc_Constrict_")]
        assert sum(r.height_mm for r in thirds) <= whole.height_mm


@pytest.mark.parametrize(
    ("site", "rx", "fx", "side", "organ", "metric", "bounds"), SITE_CASES
)
def test_site_organ_doses_in_literature_ranges(  # noqa: PLR0917
    tmp_path, site, rx, fx, side, organ, metric, bounds
):
    truth = write_phantom(
        tmp_path,
        site_spec(site, prescription_gy=rx, fractions=fx, laterality=side),
        seed=1,
    )
    dose = read_rtdose(tmp_path / "RTDOSE.dcm")
    rois = {r.name: r for r in read_rtstruct(tmp_path / "RTSTRUCT.dcm").rois}
    dvh = compute_dvh(rois[organ].contours, dose)
    value = evaluate(dvh, metric)
    assert bounds[0] <= value <= bounds[1], (site, organ, metric, value)
    ref = next(r for r in truth["rois"] if r["name"] == organ)
    assert ref["method"] == "rqmc"
    # the engine on the 4 mm grid agrees with the numerical truth of the solid (to
    # 2 %; 8 % for an organ of a few slices in a steep gradient)
    rel = 0.02 if ref["volume_cc"] >= 20.0 else 0.08
    assert dvh.mean_gy == pytest.approx(ref["mean_gy"], rel=rel, abs=0.1)
    target = truth["prescription"]["target"]
    ptv = next(r for r in truth["rois"] if r["name"] == target)
    assert ptv["mean_gy"] == pytest.approx(rx, rel=0.02)
    saved = json.loads((tmp_path / "truth.json").read_text())
    assert saved["dose_field"]["conformal"]


def test_site_names_and_unions(tmp_path):
    names = {"Lung_L": "Lt Lung", "Lungs": "LUNGS", "PTV": "PTV_60"}
    spec = site_spec("lung", prescription_gy=60, fractions=30, names=names)
    assert spec.roi_names() == [
        "BODY", "Lt Lung", "Lung_R", "Heart", "Esophagus", "SpinalCord", "PTVp",
        "Trachea", "Bronchus", "BrachialPlex_L", "BrachialPlex_R", "GTV", "CTV",
        "PTVn", "LUNGS", "PTV_60",
    ]  # fmt: skip
    truth = write_phantom(tmp_path, spec.model_copy(update={"truth_samples": 4096}))
    by_name = {r["name"]: r for r in truth["rois"]}
    assert by_name["LUNGS"]["volume_cc"] == pytest.approx(
        by_name["Lt Lung"]["volume_cc"] + by_name["Lung_R"]["volume_cc"]
    )
    assert by_name["LUNGS"]["shape"] == "union"
    # the PTV of a conventional plan: the primary's and the nodes' (one fall-off)
    assert by_name["PTV_60"]["volume_cc"] == pytest.approx(
        by_name["PTVp"]["volume_cc"] + by_name["PTVn"]["volume_cc"]
    )
    assert truth["prescription"]["target"] == "PTVp"
    sbrt = site_spec("lung", prescription_gy=54, fractions=3, names=names)
    assert "PTVn" not in sbrt.roi_names()
    assert "PTV_60" in [r.name for r in sbrt.rois]


def test_site_laterality_mirrors_the_target():
    left = site_spec("breast", prescription_gy=50, fractions=25, laterality="L")
    right = site_spec("breast", prescription_gy=50, fractions=25, laterality="R")
    assert left.target_roi().offset_mm[0] > 0 > right.target_roi().offset_mm[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"site": "knee"}, "site 'knee'"),
        ({"laterality": "X"}, "laterality"),
        ({"fractions": 0}, "prescription"),
    ],
)
def test_site_spec_bad_input(kwargs, message):
    args = {"site": "breast", "prescription_gy": 50.0, "fractions": 25} | kwargs
    site = args.pop("site")
    with pytest.raises(PhantomSpecError, match=message):
        site_spec(site, **args)


def test_linear_truth_unchanged_by_the_model():
    # A spec without conformal parts keeps the exact closed-form truth.
    solid = Solid.make("sphere", 20.0)
    fld = LinearDoseField(10.0, (0.0, 0.0, 1.0))
    assert cumulative_volume_mm3(solid, fld, 10.0) == pytest.approx(
        solid.volume_mm3() / 2
    )
