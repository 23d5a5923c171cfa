"""Write analytic phantoms as DICOM-RT (CT, RTSTRUCT, RTPLAN, RTDOSE) with their truth.

A phantom is described by a :class:`~etl.phantom.spec.PhantomSpec` (JSON schema in
:mod:`etl.phantom.spec` and ``docs/phantoms.md``): named ROIs that are spheres,
cylinders or cones (:mod:`etl.phantom.geometry`), in a dose that is a sum of linear
fields. :func:`write_phantom` writes one consistent set sharing a StudyInstanceUID and a
FrameOfReferenceUID:

- ``CT_0001.dcm`` ...: a CT Image Storage series with one slice per contour plane
  (0 HU inside the ROIs, or the ROI's ``ct_hu``, -1000 HU elsewhere);
- ``RTSTRUCT.dcm``: CLOSED_PLANAR contours of the true sections on every plane,
  referencing the CT slices, with RT ROI Observations;
- ``RTPLAN.dcm``: prescription (Dose Reference of the target), fractions, beams, and the
  referenced structure set;
- ``RTDOSE.dcm``: multi-frame grid (relative GridFrameOffsetVector, 32-bit,
  DoseGridScaling a power of ten), DoseUnits GY, DoseType PHYSICAL, DoseSummationType
  PLAN, referencing the plan. Voxel centres lie at multiples of the grid size; the
  value at each centre is the analytic field (exact to half the scaling), so trilinear
  interpolation reproduces the field exactly wherever the 8 neighbours are unclipped;
  voxels farther than one voxel from every ROI's bounding box may be clipped at 0 Gy;
- ``truth.json``: the analytical truth of every ROI (:mod:`etl.phantom.truth`).

Contour planes lie at ``z = z0 + k * spacing`` with ``z0 = spacing / 2`` unless the spec
sets ``contour_plane_origin_mm``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from etl.phantom._objects import (
    make_uid,
    write_ct,
    write_rtdose,
    write_rtplan,
    write_rtstruct,
)
from etl.phantom.conformal import DoseModel
from etl.phantom.geometry import (
    PhantomSpecError,
    Solid,
    polygon_area_mm2,
)
from etl.phantom.sections import section_polygon
from etl.phantom.sections_batch import section_polygons
from etl.phantom.spec import PhantomSpec, parse_spec
from etl.phantom.truth import DEFAULT_METRICS, RoiTruth, roi_truth
from etl.phantom.truth_numeric import numeric_roi_truth
from omop.private_files import make_private_dirs

__all__ = ["CONVENTION", "TRUTH_FORMAT", "phantom_uids", "write_phantom"]

FloatArray = NDArray[np.float64]

TRUTH_FORMAT = "rtcohort-phantom-truth/1"
CONVENTION = (
    "The analytical structure is the true continuous solid (Nelms et al. 2015, Med "
    "Phys 42:4435), not the contour stack: volume_cc, the cumulative DVH (volume "
    "receiving at least dose_gy) and the metrics are those of the solid in the "
    "analytic dose field. contour_stack_volume_cc is the volume of the written "
    "polygons as planar slabs with half-spacing end caps, for reference only."
)
_MAX_VERTICES = 1500  # keeps ContourData under the 64 kB limit of explicit-VR DS


def _contours(
    spec: PhantomSpec, solid: Solid, planes_mm: FloatArray
) -> list[FloatArray]:
    tol = max(spec.contour_tolerance_mm, 1e-5 * solid.diameter_mm)
    out = []
    polys = section_polygons(solid, planes_mm, tolerance_mm=tol)
    start = 0  # polys[k - start] is plane k's section at the current tolerance
    for k, z in enumerate(planes_mm):
        poly = polys[k - start]
        if poly is not None and len(poly) > _MAX_VERTICES:
            while poly is not None and len(poly) > _MAX_VERTICES:
                tol *= 4.0  # and for the planes after this one too
                poly = section_polygon(solid, float(z), tolerance_mm=tol)
            start = k + 1
            polys = section_polygons(solid, planes_mm[start:], tolerance_mm=tol)
        if poly is not None:
            out.append(poly)
    return out


def _dose_grid(
    spec: PhantomSpec, solids: list[Solid], model: DoseModel
) -> tuple[tuple[FloatArray, FloatArray, FloatArray], FloatArray]:
    """Voxel-centre axes (x, y, z) and the dose ``(k, j, i)`` in Gy."""
    g = spec.dose_grid_mm
    fld = model.linear  # the other components are >= 0
    for roi, solid in zip(spec.rois, solids, strict=True):
        blo, bhi = solid.bounds_mm()
        corners = np.array(
            [
                [x, y, z]
                for x in (blo[0] - g, bhi[0] + g)
                for y in (blo[1] - g, bhi[1] + g)
                for z in (blo[2] - g, bhi[2] + g)
            ]
        )
        if float(np.min(fld.dose_at(corners))) < 0.0:
            raise PhantomSpecError(
                f"dose: the field is negative within one voxel of ROI {roi.name!r}; "
                "raise dose_gy or lower the gradient"
            )
    lo = np.min([s.bounds_mm()[0] for s in solids], axis=0)
    hi = np.max([s.bounds_mm()[1] for s in solids], axis=0)
    start = np.floor(lo / g + 1e-9) - 1
    stop = np.ceil(hi / g - 1e-9) + 1
    xs, ys, zs = (np.arange(start[a], stop[a] + 1) * g for a in range(3))
    zz, yy, xx = np.meshgrid(zs, ys, xs, indexing="ij")
    dose = model.dose_at(np.stack([xx, yy, zz], axis=-1))
    return (xs, ys, zs), np.clip(dose, 0.0, None)


def phantom_uids(seed: int | None, patient_id: str) -> dict[str, str]:
    """Return the UIDs :func:`write_phantom` gives a phantom (reproducible with a seed).

    Keys: ``study_uid``, ``for_uid``, ``ct_series_uid``, ``rs_series``,
    ``rp_series``, ``rd_series``, ``rtstruct_uid``, ``rtplan_uid``, ``rtdose_uid``.
    """
    labels = (
        "study_uid", "for_uid", "ct_series_uid", "rs_series", "rp_series", "rd_series",
        "rtstruct_uid", "rtplan_uid", "rtdose_uid",
    )  # fmt: skip
    return {label: make_uid(seed, patient_id, label) for label in labels}


def write_phantom(
    out_dir: str | Path,
    spec: PhantomSpec | Mapping[str, Any],
    *,
    patient_id: str = "PHANTOM",
    seed: int | None = None,
    study_date: date = date(2024, 1, 1),
) -> dict[str, Any]:
    """Write a phantom (CT, RTSTRUCT, RTPLAN, RTDOSE, truth.json) into ``out_dir``.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed).
    spec
        The phantom, as a :class:`~etl.phantom.spec.PhantomSpec` or its JSON mapping.
    patient_id
        PatientID (and PatientName ``PHANTOM^<id>``) of every object.
    seed
        When given, every UID derives from it and ``patient_id`` (reproducible sets);
        otherwise UIDs are random.
    study_date
        StudyDate and the other dates of the objects.

    Returns
    -------
    dict
        The truth (also written to ``truth.json``): convention, UIDs, file names
        (relative to ``out_dir``), sampling, dose field and one entry per ROI with
        ``volume_cc``, ``min_gy``, ``mean_gy``, ``max_gy``, ``metrics`` (TG-263 syntax)
        and the cumulative ``dvh``.

    Raises
    ------
    PhantomSpecError
        If the spec is invalid or the dose would be negative near a ROI.

    Examples
    --------
    >>> import tempfile
    >>> from etl.phantom.spec import spec_from_options
    >>> spec = spec_from_options("sphere", 10, dose_grid_mm=2, contour_spacing_mm=2)
    >>> truth = write_phantom(tempfile.mkdtemp(), spec, seed=1)
    >>> round(truth["rois"][0]["volume_cc"], 4)
    0.5236
    """
    if not isinstance(spec, PhantomSpec):
        spec = parse_spec(spec)
    out = make_private_dirs(out_dir)  # the demo writes phantoms in the data folder
    solids = [roi.solid() for roi in spec.rois]
    unions = spec.union_parts()
    model = spec.dose_model()
    target = spec.target_roi()
    rx_gy = spec.plan.prescription_gy or float(
        model.dose_at(np.asarray(target.offset_mm))
    )
    if rx_gy <= 0:
        raise PhantomSpecError(
            "plan.prescription_gy: the dose at the target centre is <= 0"
        )
    s = spec.contour_spacing_mm
    z0 = (
        spec.contour_plane_origin_mm
        if spec.contour_plane_origin_mm is not None
        else s / 2
    )
    zlo = min(sol.bounds_mm()[0][2] for sol in solids)
    zhi = max(sol.bounds_mm()[1][2] for sol in solids)
    ks = np.arange(math.floor((zlo - z0) / s), math.ceil((zhi - z0) / s) + 1)
    planes = np.round(z0 + ks * s, 9)
    contours = [_contours(spec, solid, planes) for solid in solids]
    by_name = dict(zip([r.name for r in spec.rois], contours, strict=True))
    contours += [[p for n in u.of for p in by_name[n]] for u in spec.unions]
    used = sorted({round(float(p[0, 2]), 9) for polys in contours for p in polys})
    if not used:
        raise PhantomSpecError(
            "rois: no ROI crosses a contour plane (spacing too coarse)"
        )
    planes = planes[(planes >= used[0] - 1e-9) & (planes <= used[-1] + 1e-9)]
    ctx: dict[str, Any] = {"seed": seed, "patient_id": patient_id}
    ctx["date"] = study_date.strftime("%Y%m%d")
    ctx.update(phantom_uids(seed, patient_id))
    ct = write_ct(out, ctx, spec, solids, planes)
    write_rtstruct(out / "RTSTRUCT.dcm", ctx, spec, contours, ct)  # unions last
    target_number = 1 + [r.name for r in spec.rois].index(target.name)
    write_rtplan(out / "RTPLAN.dcm", ctx, spec, target_number, rx_gy)
    axes, dose = _dose_grid(spec, solids, model)
    scaling = write_rtdose(out / "RTDOSE.dcm", ctx, spec, axes, dose)
    parts = [[s] for s in solids] + unions
    truth = _truth(spec, parts, model, contours, ctx, ct, axes, scaling, rx_gy)
    (out / "truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return truth


def _roi_truth(
    spec: PhantomSpec, parts: list[Solid], model: DoseModel, k: int
) -> RoiTruth:
    if model.is_linear and len(parts) == 1:
        return roi_truth(parts[0], model.linear)
    return numeric_roi_truth(parts, model.dose_at, samples=spec.truth_samples, seed=k)


def _truth(  # noqa: PLR0917
    spec: PhantomSpec,
    parts: list[list[Solid]],
    model: DoseModel,
    contours: list[list[FloatArray]],
    ctx: dict[str, Any],
    ct: list[tuple[str, float, str]],
    axes: tuple[FloatArray, FloatArray, FloatArray],
    scaling: float,
    rx_gy: float,
) -> dict[str, Any]:
    rois = []
    labels = [(r.name, str(r.interpreted_type)) for r in spec.rois]
    labels += [(u.name, str(u.interpreted_type)) for u in spec.unions]
    fld = model.linear
    for number, ((name, kind), solids, polys) in enumerate(
        zip(labels, parts, contours, strict=True), start=1
    ):
        t = _roi_truth(spec, solids, model, number)
        solid = solids[0]
        stack_mm3 = sum(polygon_area_mm2(p) for p in polys) * spec.contour_spacing_mm
        rois.append(
            {
                "number": number,
                "name": name,
                "shape": str(solid.kind) if len(solids) == 1 else "union",
                "size_mm": solid.diameter_mm,
                "height_mm": solid.height_mm,
                "centre_mm": list(solid.centre_mm),
                "axis": list(solid.axis),
                "interpreted_type": kind,
                "method": t.method,
                "uncertainty": t.uncertainty,
                "volume_cc": t.volume_cc,
                "contour_stack_volume_cc": stack_mm3 / 1000.0,
                "n_contours": len(polys),
                "min_gy": t.min_gy,
                "mean_gy": t.mean_gy,
                "max_gy": t.max_gy,
                "metrics": {k: t.metrics[k] for k in DEFAULT_METRICS},
                "dvh": {
                    "dose_gy": list(t.dvh_dose_gy),
                    "volume_cc": list(t.dvh_volume_cc),
                },
            }
        )
    xs, ys, zs = axes
    return {
        "format": TRUTH_FORMAT,
        "convention": CONVENTION,
        "dvh_definition": "cumulative: volume_cc receiving at least dose_gy",
        "patient_id": ctx["patient_id"],
        "uids": {
            "study_instance_uid": ctx["study_uid"],
            "frame_of_reference_uid": ctx["for_uid"],
            "ct_series_instance_uid": ctx["ct_series_uid"],
            "rtstruct_sop_instance_uid": ctx["rtstruct_uid"],
            "rtplan_sop_instance_uid": ctx["rtplan_uid"],
            "rtdose_sop_instance_uid": ctx["rtdose_uid"],
        },
        "files": {
            "ct": [name for _, _, name in ct],
            "rtstruct": "RTSTRUCT.dcm",
            "rtplan": "RTPLAN.dcm",
            "rtdose": "RTDOSE.dcm",
        },
        "contour_spacing_mm": spec.contour_spacing_mm,
        "contour_planes_mm": [float(z) for _, z, _ in ct],
        "dose_grid": {
            "spacing_mm": spec.dose_grid_mm,
            "origin_mm": [float(xs[0]), float(ys[0]), float(zs[0])],
            "shape_kji": [len(zs), len(ys), len(xs)],
            "dose_grid_scaling": scaling,
        },
        "dose_field": {
            "model": (
                "dose_gy(x) = constant_gy + gradient_gy_per_mm . x (x in mm)"
                if model.is_linear
                else "linear field + conformal + beams (etl.phantom.conformal)"
            ),
            "constant_gy": fld.constant_gy,
            "gradient_gy_per_mm": list(fld.gradient_gy_per_mm),
            "fields": [f.model_dump(mode="json") for f in spec.dose],
            **model.describe(),
        },
        "prescription": {
            "target": spec.target_roi().name,
            "prescription_gy": rx_gy,
            "fractions": spec.plan.fractions,
        },
        "spec": spec.model_dump(mode="json"),
        "rois": rois,
    }
