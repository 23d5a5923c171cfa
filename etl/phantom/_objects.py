"""The DICOM objects of an analytic phantom: CT, RTSTRUCT, RTPLAN, RTDOSE (private).

Written by :func:`etl.phantom.write.write_phantom`, which describes the set.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    generate_uid,
)

from etl.phantom.geometry import Solid
from etl.phantom.spec import PhantomSpec, PlanSpec

FloatArray = NDArray[np.float64]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
_STUDY_COMPONENT = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (as TPSs do)
_COLOURS = ((255, 0, 0), (0, 160, 255), (0, 200, 0), (255, 200, 0), (200, 0, 255))


def make_uid(seed: int | None, patient_id: str, label: str) -> str:
    if seed is None:
        return str(generate_uid())
    return str(generate_uid(entropy_srcs=[str(seed), patient_id, label]))


def _ds_text(points: FloatArray, fmt: str = "%.5f") -> str:
    r"""Return ``x\y\z\...`` of an (n, 3) array, each value as ``fmt``.

    A planar contour (one z) formats its z once and x, y in one ``%`` of a tuple:
    the same text as formatting each value, ~3x faster.
    """
    pts = np.asarray(points, dtype=np.float64)
    planar = pts.ndim == 2 and pts.shape[1] == 3 and len(pts) > 0  # noqa: PLR2004
    if planar:  # the same bits (-0.0 is not 0.0 here: it is written "-0.00000")
        bits = pts[:, 2].view(np.uint64)
        planar = bool(np.all(bits == bits[0]))
    if planar:
        z = fmt % float(pts[0, 2])
        text = "\\".join([f"{fmt}\\{fmt}\\{z}"] * len(pts))
        return text % tuple(pts[:, :2].ravel().tolist())
    flat = pts.ravel().tolist()
    return ("\\".join([fmt] * len(flat))) % tuple(flat)


def _ds_raw(keyword_tag: int, values: FloatArray, fmt: str = "%.5f") -> RawDataElement:
    """Build a DS element written verbatim (fast for long ContourData)."""
    raw = _ds_text(values, fmt).encode("ascii")
    if len(raw) % 2:
        raw += b" "
    return RawDataElement(Tag(keyword_tag), "DS", len(raw), raw, 0, False, True)


def _base(
    ctx: dict[str, Any], sop_class: str, sop_uid: str, modality: str, series_uid: str
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = UID(sop_uid)
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ctx["date"]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = "rtcohort"
    ds.ManufacturerModelName = "analytic phantom"
    ds.ReferringPhysicianName = ""
    ds.PatientName = f"PHANTOM^{ctx['patient_id']}"
    ds.PatientID = ctx["patient_id"]
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = ctx["study_uid"]
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = ctx["for_uid"]
    ds.PositionReferenceIndicator = ""
    return ds


def write_ct(
    out: Path,
    ctx: dict[str, Any],
    spec: PhantomSpec,
    solids: list[Solid],
    planes: FloatArray,
) -> list[tuple[str, float, str]]:
    px = spec.ct_pixel_mm
    lo = np.min([s.bounds_mm()[0] for s in solids], axis=0) - 2.0 * px
    hi = np.max([s.bounds_mm()[1] for s in solids], axis=0) + 2.0 * px
    i0, i1 = math.floor(lo[0] / px), math.ceil(hi[0] / px)
    j0, j1 = math.floor(lo[1] / px), math.ceil(hi[1] / px)
    xs, ys = np.arange(i0, i1 + 1) * px, np.arange(j0, j1 + 1) * px
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    boxes = [_pixel_box(solid, xs, ys) for solid in solids]
    ds = _ct_template(ctx, spec, gx.shape, np.array([xs[0], ys[0]]))
    written = []
    for n, z in enumerate(planes, start=1):
        hu = np.full(gx.shape, -1000.0)
        for roi, solid, box in zip(spec.rois, solids, boxes, strict=True):
            (zlo, zhi), rows, cols = box
            if zlo <= z <= zhi:  # the solid lies in its box: the rest stays as it is
                pts = np.stack([gx[rows, cols], gy[rows, cols]], axis=-1)
                pts = np.concatenate([pts, np.full((*pts.shape[:2], 1), z)], axis=-1)
                hu[rows, cols][solid.contains(pts)] = roi.ct_hu
        uid = make_uid(ctx["seed"], ctx["patient_id"], f"ct{n}")
        ds.file_meta.MediaStorageSOPInstanceUID = UID(uid)
        ds.SOPInstanceUID = UID(uid)
        ds.InstanceNumber = n
        ds.ImagePositionPatient = [float(xs[0]), float(ys[0]), float(z)]
        ds.SliceLocation = float(z)
        ds.PixelData = np.round(hu + 1024.0).astype("<u2").tobytes()
        name = f"CT_{n:04d}.dcm"
        ds.save_as(out / name, enforce_file_format=True)
        written.append((uid, float(z), name))
    return written


_BOX_MARGIN_MM = 1e-6  # beyond the point-in-solid tolerance (1e-9 mm)


def _pixel_box(
    solid: Solid, xs: FloatArray, ys: FloatArray
) -> tuple[tuple[float, float], slice, slice]:
    """Return the z range and the pixel rows and columns of a solid's box."""
    lo, hi = solid.bounds_mm()
    lo, hi = lo - _BOX_MARGIN_MM, hi + _BOX_MARGIN_MM
    i0, i1 = np.searchsorted(xs, [lo[0], hi[0]], side="left")
    j0, j1 = np.searchsorted(ys, [lo[1], hi[1]], side="left")
    i1 += int(i1 < len(xs) and xs[min(i1, len(xs) - 1)] <= hi[0])
    j1 += int(j1 < len(ys) and ys[min(j1, len(ys) - 1)] <= hi[1])
    rows, cols = slice(int(j0), int(j1)), slice(int(i0), int(i1))
    return (float(lo[2]), float(hi[2])), rows, cols


def _ct_template(
    ctx: dict[str, Any], spec: PhantomSpec, shape: tuple[int, ...], corner: FloatArray
) -> Dataset:
    """Return the CT slice; each slice sets its UID, number, position and pixels."""
    px = spec.ct_pixel_mm
    x0, y0 = float(corner[0]), float(corner[1])
    uid = make_uid(None, "", "")
    ds = _base(ctx, CT_IMAGE_STORAGE, uid, "CT", ctx["ct_series_uid"])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SeriesDescription = "analytic phantom CT"
    ds.InstanceNumber = 1
    ds.PatientPosition = "HFS"
    ds.ImagePositionPatient = [x0, y0, 0.0]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.SliceLocation = 0.0
    ds.SliceThickness = spec.contour_spacing_mm
    ds.PixelSpacing = [px, px]
    ds.KVP = 120
    ds.Rows, ds.Columns = shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    return ds


def _referenced(sop_class: str, sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_uid
    return item


def _referenced_frame(ctx: dict[str, Any], ct: list[tuple[str, float, str]]) -> Dataset:
    """Return the structure set's frame of reference with its study and CT series."""
    series = Dataset()
    series.SeriesInstanceUID = ctx["ct_series_uid"]
    series.ContourImageSequence = [
        _referenced(CT_IMAGE_STORAGE, uid) for uid, _, _ in ct
    ]
    study = _referenced(_STUDY_COMPONENT, ctx["study_uid"])
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = ctx["for_uid"]
    frame.RTReferencedStudySequence = [study]
    return frame


def write_rtstruct(
    path: Path,
    ctx: dict[str, Any],
    spec: PhantomSpec,
    contours: list[list[FloatArray]],
    ct: list[tuple[str, float, str]],
) -> None:
    ds = _base(
        ctx, RT_STRUCTURE_SET_STORAGE, ctx["rtstruct_uid"], "RTSTRUCT", ctx["rs_series"]
    )
    ds.SeriesDescription = "analytic phantom structures"
    ds.StructureSetLabel = "PHANTOM"
    ds.StructureSetName = "analytic phantom"
    ds.StructureSetDate = ctx["date"]
    ds.StructureSetTime = "120000"
    ds.ReferencedFrameOfReferenceSequence = [_referenced_frame(ctx, ct)]
    ct_by_z = {round(z, 6): uid for uid, z, _ in ct}
    rois, roi_contours, observations = [], [], []
    items: list[Dataset] = []
    encoded: dict[int, RawDataElement] = {}
    labels = [(r.name, str(r.interpreted_type)) for r in spec.rois]
    labels += [(u.name, str(u.interpreted_type)) for u in spec.unions]
    for number, ((name, kind), polys) in enumerate(
        zip(labels, contours, strict=True), start=1
    ):
        item = Dataset()
        item.ROINumber = number
        item.ReferencedFrameOfReferenceUID = ctx["for_uid"]
        item.ROIName = name
        item.ROIGenerationAlgorithm = "AUTOMATIC"
        rois.append(item)
        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ROIDisplayColor = list(_COLOURS[(number - 1) % len(_COLOURS)])
        seq = []
        for k, poly in enumerate(polys, start=1):
            c = Dataset()
            c.ContourNumber = k
            c.ContourImageSequence = [
                _referenced(CT_IMAGE_STORAGE, ct_by_z[round(float(poly[0, 2]), 6)])
            ]
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(poly)
            if id(poly) not in encoded:  # a union repeats its parts' polygons
                encoded[id(poly)] = _ds_raw(0x30060050, poly)
            c[0x30060050] = encoded[id(poly)]
            seq.append(c)
            items.append(c)
        rc.ContourSequence = seq
        roi_contours.append(rc)
        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.ROIObservationLabel = name[:16]  # SH: 16 characters at most
        obs.RTROIInterpretedType = kind
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = rois
    ds.ROIContourSequence = roi_contours
    ds.RTROIObservationsSequence = observations
    for item in items:  # write the raw ContourData as is, without re-encoding
        item.set_original_encoding(False, True, item._character_set)
    ds.save_as(path, enforce_file_format=True)


def write_rtplan(
    path: Path, ctx: dict[str, Any], spec: PhantomSpec, target_number: int, rx_gy: float
) -> None:
    plan = spec.plan
    ds = _base(ctx, RT_PLAN_STORAGE, ctx["rtplan_uid"], "RTPLAN", ctx["rp_series"])
    ds.SeriesDescription = "analytic phantom plan"
    # A descriptor, not the patient's name: it survives the Clean Descriptors Option.
    ds.RTPlanLabel = f"{rx_gy:g}Gy/{plan.fractions}fx"[:16]
    ds.RTPlanName = "analytic phantom"
    ds.RTPlanDate = ctx["date"]
    ds.RTPlanTime = "120000"
    ds.RTPlanGeometry = "PATIENT"
    ds.PlanIntent = "CURATIVE"
    ds.ApprovalStatus = "APPROVED"
    ds.ReferencedStructureSetSequence = [
        _referenced(RT_STRUCTURE_SET_STORAGE, ctx["rtstruct_uid"])
    ]
    ds.DoseReferenceSequence = [_dose_reference(ctx, spec, target_number, rx_gy)]
    isocentre = [float(v) for v in spec.target_roi().offset_mm]
    beams, refs = [], []
    beam_dose = rx_gy / plan.fractions / plan.beams
    for b in range(1, plan.beams + 1):
        beams.append(_beam(plan, b, isocentre))
        rb = Dataset()
        rb.ReferencedBeamNumber = b
        rb.BeamDose = round(beam_dose, 6)
        rb.BeamMeterset = round(100.0 * beam_dose, 4)
        refs.append(rb)
    group = Dataset()
    group.FractionGroupNumber = 1
    group.NumberOfFractionsPlanned = plan.fractions
    group.NumberOfBeams = plan.beams
    group.NumberOfBrachyApplicationSetups = 0
    group.ReferencedBeamSequence = refs
    ds.FractionGroupSequence = [group]
    ds.BeamSequence = beams
    setup = Dataset()
    setup.PatientSetupNumber = 1
    setup.PatientPosition = "HFS"
    ds.PatientSetupSequence = [setup]
    ds.save_as(path, enforce_file_format=True)


def _dose_reference(
    ctx: dict[str, Any], spec: PhantomSpec, target_number: int, rx_gy: float
) -> Dataset:
    """Return the plan's target dose reference (the prescription)."""
    ref = Dataset()
    ref.DoseReferenceNumber = 1
    ref.DoseReferenceUID = make_uid(ctx["seed"], ctx["patient_id"], "doseref")
    ref.DoseReferenceStructureType = "VOLUME"
    ref.ReferencedROINumber = target_number
    ref.DoseReferenceDescription = spec.target_roi().name
    ref.DoseReferenceType = "TARGET"
    ref.TargetPrescriptionDose = round(rx_gy, 6)
    return ref


def _beam(plan: PlanSpec, b: int, isocentre: list[float]) -> Dataset:
    """Return beam ``b`` of ``plan.beams``, evenly spaced around the isocentre."""
    gantry = round(360.0 * (b - 1) / plan.beams, 6)
    beam = Dataset()
    beam.BeamNumber = b
    beam.BeamName = f"G{gantry:g}"
    beam.BeamType = plan.beam_type
    beam.RadiationType = plan.radiation_type
    beam.TreatmentMachineName = "PHANTOM_LINAC"
    beam.PrimaryDosimeterUnit = "MU"
    beam.SourceAxisDistance = 1000.0
    beam.TreatmentDeliveryType = "TREATMENT"
    beam.NumberOfWedges = beam.NumberOfCompensators = 0
    beam.NumberOfBoli = beam.NumberOfBlocks = 0
    beam.FinalCumulativeMetersetWeight = 1.0
    beam.NumberOfControlPoints = 2
    cps = []
    for index, weight in ((0, 0.0), (1, 1.0)):
        cp = Dataset()
        cp.ControlPointIndex = index
        cp.CumulativeMetersetWeight = weight
        if index == 0:
            cp.NominalBeamEnergy = plan.energy_mv
            cp.GantryAngle = gantry
            cp.GantryRotationDirection = "NONE"
            cp.BeamLimitingDeviceAngle = 0.0
            cp.PatientSupportAngle = 0.0
            cp.IsocenterPosition = isocentre
        cps.append(cp)
    beam.ControlPointSequence = cps
    return beam


def write_rtdose(
    path: Path,
    ctx: dict[str, Any],
    spec: PhantomSpec,
    axes: tuple[FloatArray, FloatArray, FloatArray],
    dose: FloatArray,
) -> float:
    ds = _base(ctx, RT_DOSE_STORAGE, ctx["rtdose_uid"], "RTDOSE", ctx["rd_series"])
    ds.SeriesDescription = "analytic phantom dose"
    xs, ys, zs = axes
    g = spec.dose_grid_mm
    ds.ImagePositionPatient = [float(xs[0]), float(ys[0]), float(zs[0])]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [g, g]
    ds.SliceThickness = g
    ds.NumberOfFrames, ds.Rows, ds.Columns = dose.shape
    ds.FrameIncrementPointer = Tag(0x3004000C)
    ds.GridFrameOffsetVector = [round(float(z - zs[0]), 6) for z in zs]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    peak = float(np.max(dose))
    scaling = 10.0 ** math.ceil(math.log10(peak / 4.0e9)) if peak > 0 else 1.0
    ds.DoseGridScaling = f"{scaling:.0e}"
    ds.ReferencedRTPlanSequence = [_referenced(RT_PLAN_STORAGE, ctx["rtplan_uid"])]
    ds.PixelData = np.round(dose / scaling).astype("<u4").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return scaling
