"""Minimal RTDOSE / RTSTRUCT objects (pydicom) for the reader and CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

RTDOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RTPLAN = "1.2.840.10008.5.1.4.1.1.481.5"


def _base(sop_class: str, modality: str, frame: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.PatientID = "TEST"
    ds.FrameOfReferenceUID = frame
    return ds


def rtdose(
    values: np.ndarray,
    *,
    origin=(0.0, 0.0, 0.0),
    spacing=(2.0, 2.0, 2.0),
    iop=(1, 0, 0, 0, 1, 0),
    units="GY",
    scaling: float | None = 0.001,
    frame="1.2.3.9",
    offsets=None,
    summation="PLAN",
    plan_uid: str | None = None,
    beam: int | None = None,
) -> Dataset:
    """values: dose in the file's units before scaling, shape (k, j, i), integers.

    ``plan_uid`` adds a ReferencedRTPlanSequence, ``beam`` its referenced beam
    (fraction group 1).
    """
    ds = _base(RTDOSE, "RTDOSE", frame)
    k, j, i = values.shape
    ds.ImagePositionPatient = list(origin)
    ds.ImageOrientationPatient = list(iop)
    ds.PixelSpacing = [spacing[1], spacing[0]]
    ds.GridFrameOffsetVector = (
        list(offsets) if offsets is not None else [n * spacing[2] for n in range(k)]
    )
    ds.NumberOfFrames = k
    ds.Rows, ds.Columns = j, i
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseUnits = units
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation
    if plan_uid is not None:
        ref = Dataset()
        ref.ReferencedSOPClassUID = RTPLAN
        ref.ReferencedSOPInstanceUID = plan_uid
        if beam is not None:
            fg, b = Dataset(), Dataset()
            fg.ReferencedFractionGroupNumber = 1
            b.ReferencedBeamNumber = beam
            fg.ReferencedBeamSequence = Sequence([b])
            ref.ReferencedFractionGroupSequence = Sequence([fg])
        ds.ReferencedRTPlanSequence = Sequence([ref])
    if scaling is not None:
        ds.DoseGridScaling = scaling
    ds.PixelData = np.ascontiguousarray(values, dtype="<u4").tobytes()
    return ds


def rtstruct(
    rois: dict[str, list[np.ndarray]], *, frame="1.2.3.9", kind="CLOSED_PLANAR"
):
    ds = _base(RTSTRUCT, "RTSTRUCT", frame)
    del ds.FrameOfReferenceUID
    ref = Dataset()
    ref.FrameOfReferenceUID = frame
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref])
    ss, rc, obs = [], [], []
    for n, (name, contours) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber = n
        item.ROIName = name
        item.ReferencedFrameOfReferenceUID = frame
        ss.append(item)
        c = Dataset()
        c.ReferencedROINumber = n
        seq = []
        for pts in contours:
            ci = Dataset()
            ci.ContourGeometricType = kind if len(pts) != 1 else "POINT"
            ci.NumberOfContourPoints = len(pts)
            ci.ContourData = [float(v) for v in np.asarray(pts).ravel()]
            seq.append(ci)
        if seq:
            c.ContourSequence = Sequence(seq)
        rc.append(c)
        o = Dataset()
        o.ReferencedROINumber = n
        o.RTROIInterpretedType = "ORGAN"
        obs.append(o)
    ds.StructureSetROISequence = Sequence(ss)
    ds.ROIContourSequence = Sequence(rc)
    ds.RTROIObservationsSequence = Sequence(obs)
    return ds


def rtplan(beams: tuple[int, ...], *, frame="1.2.3.9", fractions: int = 25):
    """An RTPLAN with one fraction group delivering ``beams``."""
    ds = _base(RTPLAN, "RTPLAN", frame)
    fg = Dataset()
    fg.FractionGroupNumber = 1
    fg.NumberOfFractionsPlanned = fractions
    refs = []
    for n in beams:
        b = Dataset()
        b.ReferencedBeamNumber = n
        refs.append(b)
    fg.ReferencedBeamSequence = Sequence(refs)
    ds.FractionGroupSequence = Sequence([fg])
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path
