"""Milliseconds per file: rtcohort's pseudonymisation versus dicognito 0.19, same files.

Generates (in ``benchmarks/_work/deid``) a 512x512 CT slice, a ~1.9 MB RTSTRUCT with
many contours, an RTPLAN with beams and control points and an RTDOSE grid, then times
file -> file de-identification (read, de-identify, write) for both tools in one run.
dicognito runs in its own venv ``benchmarks/.venv-dicognito``::

    python3 -m venv benchmarks/.venv-dicognito
    benchmarks/.venv-dicognito/bin/pip install 'dicognito==0.19.*'
    .venv/bin/python benchmarks/deid_speed.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl.deid.keys import CentreKey
from etl.deid.pseudonymise import deidentify_bytes, deidentify_file

WORK = Path(__file__).parent / "_work" / "deid"
DICOGNITO = Path(__file__).parent / ".venv-dicognito" / "bin" / "python"

_DICOGNITO_SCRIPT = r"""
import json, sys, time, statistics
import pydicom
from dicognito.anonymizer import Anonymizer
files, out, repeat = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
result = {}
for path in files:
    times = []
    for r in range(repeat):
        t = time.perf_counter()
        ds = pydicom.dcmread(path)
        Anonymizer(seed="bench").anonymize(ds)
        ds.save_as(out)
        times.append(time.perf_counter() - t)
    result[path] = statistics.median(times) * 1000
print(json.dumps(result))
"""


def _common(ds: Dataset, sop_class: str, modality: str, uids: dict[str, str]) -> None:
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = uids["for"]
    ds.Modality = modality
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "123456"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "F"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240115"
    ds.StudyTime = "101500"
    ds.InstitutionName = "Springfield General"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.StudyDescription = "Pelvis"
    ds.Manufacturer = "ACME"


def _save(ds: Dataset, path: Path, implicit: bool = False) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    )
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return path


def make_files(folder: Path) -> dict[str, Path]:
    """Write the four benchmark objects; return label -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240115)
    uids = {"study": generate_uid(), "for": generate_uid()}
    ct = _ct(rng, uids)
    files = {"CT": _save(ct, folder / "ct.dcm")}
    rs = _rtstruct(rng, uids, ct.SOPInstanceUID)
    files["RTSTRUCT"] = _save(rs, folder / "rtstruct.dcm")
    rp = _rtplan(rng, uids, rs)
    files["RTPLAN"] = _save(rp, folder / "rtplan.dcm", implicit=True)
    files["RTDOSE"] = _save(_rtdose(rng, uids, rp), folder / "rtdose.dcm")
    return files


def _ct(rng: np.random.Generator, uids: dict[str, str]) -> Dataset:
    ct = Dataset()
    _common(ct, "1.2.840.10008.5.1.4.1.1.2", "CT", uids)
    ct.Rows = ct.Columns = 512
    ct.BitsAllocated, ct.BitsStored, ct.HighBit, ct.PixelRepresentation = 16, 16, 15, 1
    ct.SamplesPerPixel, ct.PhotometricInterpretation = 1, "MONOCHROME2"
    ct.ImagePositionPatient, ct.ImageOrientationPatient = (
        [-250, -250, 0],
        [1, 0, 0, 0, 1, 0],
    )
    ct.PixelSpacing, ct.SliceThickness = [0.98, 0.98], 2.0
    ct.PixelData = rng.integers(-1000, 1500, size=(512, 512), dtype=np.int16).tobytes()
    return ct


def _rtstruct(rng: np.random.Generator, uids: dict[str, str], ct_uid: str) -> Dataset:
    rs = Dataset()
    _common(rs, "1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT", uids)
    rs.StructureSetLabel = "RS"
    rs.StructureSetDate = "20240115"
    rois, contours = [], []
    for number in range(1, 16):
        roi = Dataset()
        roi.ROINumber, roi.ROIName = number, f"ROI_{number}"
        roi.ReferencedFrameOfReferenceUID = uids["for"]
        rois.append(roi)
        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ContourSequence = [_contour(rng, ct_uid, k) for k in range(80)]
        contours.append(rc)
    rs.StructureSetROISequence, rs.ROIContourSequence = rois, contours
    return rs


def _contour(rng: np.random.Generator, ct_uid: str, k: int) -> Dataset:
    c = Dataset()
    image = Dataset()
    image.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    image.ReferencedSOPInstanceUID = ct_uid
    c.ContourImageSequence = [image]
    c.ContourGeometricType = "CLOSED_PLANAR"
    angle = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    radius = 40 + 5 * rng.random(64)
    pts = np.column_stack(
        [radius * np.cos(angle), radius * np.sin(angle), np.full(64, 2.0 * k)]
    )
    c.NumberOfContourPoints = 64
    c.ContourData = [f"{v:.3f}" for v in pts.ravel()]
    return c


def _rtplan(rng: np.random.Generator, uids: dict[str, str], rs: Dataset) -> Dataset:
    rp = Dataset()
    _common(rp, "1.2.840.10008.5.1.4.1.1.481.5", "RTPLAN", uids)
    rp.RTPlanLabel, rp.RTPlanDate = "Plan", "20240115"
    ref = Dataset()
    ref.ReferencedSOPClassUID = rs.SOPClassUID
    ref.ReferencedSOPInstanceUID = rs.SOPInstanceUID
    rp.ReferencedStructureSetSequence = [ref]
    beams = []
    for b in range(10):
        beam = Dataset()
        beam.BeamNumber, beam.BeamName, beam.TreatmentMachineName = (
            b + 1,
            f"B{b}",
            "LINAC7",
        )
        cps = []
        for i in range(40):
            cp = Dataset()
            cp.ControlPointIndex = i
            cp.CumulativeMetersetWeight = i / 39
            device = Dataset()
            device.RTBeamLimitingDeviceType = "MLCX"
            device.LeafJawPositions = [f"{v:.1f}" for v in rng.uniform(-50, 50, 120)]
            cp.BeamLimitingDevicePositionSequence = [device]
            cps.append(cp)
        beam.ControlPointSequence = cps
        beams.append(beam)
    rp.BeamSequence = beams
    return rp


def _rtdose(rng: np.random.Generator, uids: dict[str, str], rp: Dataset) -> Dataset:
    rd = Dataset()
    _common(rd, "1.2.840.10008.5.1.4.1.1.481.2", "RTDOSE", uids)
    plan = Dataset()
    plan.ReferencedSOPClassUID = rp.SOPClassUID
    plan.ReferencedSOPInstanceUID = rp.SOPInstanceUID
    rd.ReferencedRTPlanSequence = [plan]
    rd.Rows, rd.Columns, rd.NumberOfFrames = 100, 100, 80
    rd.GridFrameOffsetVector = [2.0 * i for i in range(80)]
    rd.BitsAllocated, rd.BitsStored, rd.HighBit, rd.PixelRepresentation = 32, 32, 31, 0
    rd.SamplesPerPixel, rd.PhotometricInterpretation = 1, "MONOCHROME2"
    rd.DoseUnits, rd.DoseType, rd.DoseSummationType, rd.DoseGridScaling = (
        "GY",
        "PHYSICAL",
        "PLAN",
        1e-5,
    )
    rd.PixelData = rng.integers(
        0, 7_000_000, size=(80, 100, 100), dtype=np.uint32
    ).tobytes()
    return rd


def time_rtcohort(
    files: dict[str, Path], repeat: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Return (file -> file ms, with fsync as shipped; bytes -> bytes ms)."""
    key = CentreKey("BENCH", bytes(range(32)))
    out = WORK / "out_rtcohort.dcm"
    to_file, in_memory = {}, {}
    for label, path in files.items():
        times, memory = [], []
        data = path.read_bytes()
        for _ in range(repeat):
            start = time.perf_counter()
            deidentify_file(path, out, key)
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
            deidentify_bytes(data, key)
            memory.append(time.perf_counter() - start)
        to_file[label] = statistics.median(times) * 1000
        in_memory[label] = statistics.median(memory) * 1000
    return to_file, in_memory


def time_dicognito(files: dict[str, Path], repeat: int) -> dict[str, float] | None:
    if not DICOGNITO.exists():
        return None
    paths = [str(p) for p in files.values()]
    run = subprocess.run(
        [
            str(DICOGNITO),
            "-c",
            _DICOGNITO_SCRIPT,
            json.dumps(paths),
            str(WORK / "out_dicognito.dcm"),
            str(repeat),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    by_path = json.loads(run.stdout)
    return {label: by_path[str(path)] for label, path in files.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files = make_files(WORK)
    ours, memory = time_rtcohort(files, args.repeat)
    theirs = time_dicognito(files, args.repeat)
    print(f"median of {args.repeat} runs; file -> file = read, de-identify, write")
    print("(rtcohort writes atomically with fsync; dicognito's save_as does not fsync)")
    head = f"{'object':<9} {'MB':>6} {'rtcohort ms':>12} {'in-memory ms':>13}"
    print(f"{head} {'dicognito ms':>13} {'speed-up':>9}")
    for label, path in files.items():
        size = path.stat().st_size / 1e6
        other = theirs[label] if theirs else float("nan")
        row = f"{label:<9} {size:6.2f} {ours[label]:12.1f} {memory[label]:13.1f}"
        print(f"{row} {other:13.1f} {other / ours[label]:8.1f}x")
    if theirs is None:
        print(f"(dicognito venv missing: {DICOGNITO})")


if __name__ == "__main__":
    main()
