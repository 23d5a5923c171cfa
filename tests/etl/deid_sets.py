"""Linked CT + RTSTRUCT + RTPLAN + RTDOSE sets with identifiers planted everywhere.

Test data for the pseudonymisation tests: names, IDs and dates in the main data set and
inside sequences, private tags carrying the patient name, descriptors that mention the
patient, cross references RTDOSE -> RTPLAN -> RTSTRUCT -> CT and one frame of reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

CT = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RTPLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RTDOSE = "1.2.840.10008.5.1.4.1.1.481.2"


def _ref(sop_class: str, sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_uid
    return item


def _base(p: dict[str, str], sop_class: str, modality: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = p["study"]
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = p["for"]
    ds.Modality = modality
    ds.PatientName = p["name"]
    ds.PatientID = p["id"]
    ds.PatientBirthDate = p["birth"]
    ds.PatientSex = "F"
    ds.PatientAge = "061Y"
    ds.OtherPatientIDs = p["id"] + "-OLD"
    ds.PatientAddress = "1 Main Street, Springfield"
    ds.StudyDate = p["date"]
    ds.SeriesDate = p["date"]
    ds.ContentDate = p["date"]
    ds.StudyTime = "101500"
    ds.AcquisitionDateTime = p["date"] + "101500.000000+0100"
    ds.AccessionNumber = "ACC" + p["id"]
    ds.StudyID = "S" + p["id"]
    ds.InstitutionName = "Springfield General Hospital"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.OperatorsName = "Smithers^Waylon"
    ds.StationName = "LINAC7"
    ds.DeviceSerialNumber = "SN-4711"
    ds.Manufacturer = "ACME"
    ds.StudyDescription = f"Pelvis plan for {p['name'].split('^')[0]}"
    ds.SeriesDescription = "planning CT"
    # private block carrying the patient name
    block = ds.private_block(0x0009, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", p["name"])
    block.add_new(0x02, "LO", p["id"])
    return ds


def _save(ds: Dataset, path: Path, implicit: bool) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    )
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def write_linked_set(
    out: Path,
    patient_id: str,
    name: str,
    *,
    birth: str = "19600229",
    date: str = "20240115",
    n_slices: int = 4,
) -> dict[str, str]:
    """Write CT_000k.dcm, RS.dcm, RP.dcm, RD.dcm; return the main input UIDs."""
    out.mkdir(parents=True, exist_ok=True)
    p = {
        "id": patient_id,
        "name": name,
        "birth": birth,
        "date": date,
        "study": generate_uid(),
        "for": generate_uid(),
    }
    ct_series = generate_uid()
    ct_uids = _write_cts(out, p, ct_series, n_slices)
    rs = _write_structure_set(out, p, ct_series, ct_uids)
    rp = _write_plan(out, p, rs)
    rd = _write_dose(out, p, rp)
    return {"study": p["study"], "for": p["for"], "rs": rs, "rp": rp, "rd": rd}


def _write_cts(
    out: Path, p: dict[str, str], ct_series: str, n_slices: int
) -> list[str]:
    ct_uids: list[str] = []
    for k in range(n_slices):
        ds = _base(p, CT, "CT", ct_series)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-8.0, -8.0, 2.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [1.0, 1.0]
        ds.SliceThickness = 2.0
        ds.Rows = ds.Columns = 16
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = (np.arange(256, dtype=np.int16) + k).tobytes()
        if k:
            source = _ref(CT, ct_uids[0])
            ds.SourceImageSequence = [source]
        _save(ds, out / f"CT_{k:04d}.dcm", implicit=k % 2 == 0)
        ct_uids.append(ds.SOPInstanceUID)
    return ct_uids


def _write_structure_set(
    out: Path, p: dict[str, str], ct_series: str, ct_uids: list[str]
) -> str:
    name, date = p["name"], p["date"]
    rs = _base(p, RTSTRUCT, "RTSTRUCT", generate_uid())
    del rs.FrameOfReferenceUID
    rs.StructureSetLabel = "RS " + name.split("^", maxsplit=1)[0]
    rs.StructureSetDate = date
    rs.StructureSetTime = "120000"
    series = Dataset()
    series.SeriesInstanceUID = ct_series
    series.ContourImageSequence = [_ref(CT, u) for u in ct_uids]
    study = _ref("1.2.840.10008.3.1.2.3.1", p["study"])
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = p["for"]
    frame.RTReferencedStudySequence = [study]
    rs.ReferencedFrameOfReferenceSequence = [frame]
    rois, contours, observations = [], [], []
    surname = name.split("^", maxsplit=1)[0]
    for number, roi_name in enumerate(["PTV", "Heart", f"Bladder_{surname}"], 1):
        roi, rc, obs = _roi(number, roi_name, p["for"], ct_uids)
        rois.append(roi)
        contours.append(rc)
        observations.append(obs)
    rs.StructureSetROISequence = rois
    rs.ROIContourSequence = contours
    rs.RTROIObservationsSequence = observations
    # a private tag inside a sequence item
    inner = rois[0].private_block(0x3007, "ACME 1.0", create=True)
    inner.add_new(0x10, "LO", name)
    _save(rs, out / "RS.dcm", implicit=False)
    return str(rs.SOPInstanceUID)


def _roi(
    number: int, roi_name: str, frame_uid: str, ct_uids: list[str]
) -> tuple[Dataset, Dataset, Dataset]:
    """StructureSetROI, ROIContour (a square per slice) and RTROIObservations items."""
    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = frame_uid
    roi.ROIName = roi_name
    roi.ROIGenerationAlgorithm = "MANUAL"
    rc = Dataset()
    rc.ReferencedROINumber = number
    rc.ROIDisplayColor = [255, 0, 0]
    items = []
    for k, uid in enumerate(ct_uids):
        c = Dataset()
        c.ContourImageSequence = [_ref(CT, uid)]
        c.ContourGeometricType = "CLOSED_PLANAR"
        c.NumberOfContourPoints = 4
        c.ContourData = [0, 0, 2.0 * k, 4, 0, 2.0 * k, 4, 4, 2.0 * k, 0, 4, 2.0 * k]
        items.append(c)
    rc.ContourSequence = items
    obs = Dataset()
    obs.ObservationNumber = number
    obs.ReferencedROINumber = number
    obs.RTROIInterpretedType = "PTV" if number == 1 else "ORGAN"
    obs.ROIInterpreter = "House^Gregory"
    return roi, rc, obs


def _write_plan(out: Path, p: dict[str, str], rs_uid: str) -> str:
    date = p["date"]
    surname = p["name"].split("^", maxsplit=1)[0]
    rp = _base(p, RTPLAN, "RTPLAN", generate_uid())
    rp.RTPlanLabel = "Plan " + surname
    rp.RTPlanDate = date
    rp.RTPlanTime = "130000"
    rp.ReferencedStructureSetSequence = [_ref(RTSTRUCT, rs_uid)]
    rp.ReferencedStructureSetSequence[0].ReviewDate = date
    fg = Dataset()
    fg.FractionGroupNumber = 1
    fg.NumberOfFractionsPlanned = 25
    rp.FractionGroupSequence = [fg]
    dref = Dataset()
    dref.DoseReferenceNumber = 1
    dref.DoseReferenceUID = generate_uid()
    dref.DoseReferenceStructureType = "VOLUME"
    dref.DoseReferenceDescription = f"PTV of {surname}"
    rp.DoseReferenceSequence = [dref]
    rp.ApprovalStatus = "APPROVED"
    rp.ReviewDate = date
    rp.ReviewerName = "Hibbert^Julius"
    _save(rp, out / "RP.dcm", implicit=True)
    return str(rp.SOPInstanceUID)


def _write_dose(out: Path, p: dict[str, str], rp_uid: str) -> str:
    rd = _base(p, RTDOSE, "RTDOSE", generate_uid())
    rd.ReferencedRTPlanSequence = [_ref(RTPLAN, rp_uid)]
    rd.DoseUnits, rd.DoseType, rd.DoseSummationType = "GY", "PHYSICAL", "PLAN"
    rd.Rows = rd.Columns = 4
    rd.NumberOfFrames = 2
    rd.GridFrameOffsetVector = [0, 2]
    rd.BitsAllocated, rd.BitsStored, rd.HighBit = 32, 32, 31
    rd.PixelRepresentation = 0
    rd.SamplesPerPixel = 1
    rd.PhotometricInterpretation = "MONOCHROME2"
    rd.DoseGridScaling = 0.001
    rd.PixelData = np.arange(32, dtype=np.uint32).tobytes()
    _save(rd, out / "RD.dcm", implicit=False)
    return str(rd.SOPInstanceUID)
