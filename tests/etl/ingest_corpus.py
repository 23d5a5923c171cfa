"""Small phantoms and a BROKEN CORPUS for the ingest tests (built in tmp folders).

``SMALL_SPEC`` is a coarse 4-structure phantom (20 CT slices, 5 mm dose grid) whose
structures carry local names (Finnish heart, Swedish left lung). ``build_broken_corpus``
writes one folder per case of the issue's bad-input list and returns what each case
must end as.
"""

from __future__ import annotations

import copy
import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import generate_uid

from etl.phantom.write import write_phantom

SMALL_SPEC: dict[str, Any] = {
    "contour_spacing_mm": 5.0,
    "dose_grid_mm": 5.0,
    "ct_pixel_mm": 8.0,
    "rois": [
        {"name": "BODY", "shape": "cylinder", "size_mm": 160, "height_mm": 90,
         "offset_mm": [0, 0, 0], "axis": "z", "interpreted_type": "EXTERNAL"},
        {"name": "Sydän", "shape": "sphere", "size_mm": 40, "offset_mm": [20, 0, 0],
         "interpreted_type": "ORGAN"},
        {"name": "Lunga vä", "shape": "cylinder", "size_mm": 30, "height_mm": 50,
         "offset_mm": [-35, 0, 0], "axis": "z", "interpreted_type": "ORGAN"},
        {"name": "PTV", "shape": "sphere", "size_mm": 30, "offset_mm": [-30, 35, 0],
         "interpreted_type": "PTV"},
    ],
    "dose": [{"dose_gy": 60, "gradient": "x", "gradient_gy_per_mm": -0.2}],
    "plan": {"target": "PTV", "prescription_gy": 60, "fractions": 30},
}  # fmt: skip


def small_spec(**changes: Any) -> dict[str, Any]:
    """Return a copy of the small spec with top-level changes."""
    spec = copy.deepcopy(SMALL_SPEC)
    spec.update(changes)
    return spec


def write_patient(
    folder: Path, patient_id: str, seed: int, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write one small phantom patient; return its truth."""
    return write_phantom(folder, spec or SMALL_SPEC, patient_id=patient_id, seed=seed)


def edit(path: Path, **attributes: Any) -> None:
    """Rewrite a DICOM file with changed top-level attributes (None deletes)."""
    ds = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)


@dataclass
class Case:
    """One broken-corpus case and what it must end as."""

    name: str
    folder: Path
    expect: str  # "loaded", "held:<reason>", "warning:<reason>"


def _patient(folder: Path, pid: str, seed: int) -> Path:
    """Write a phantom patient without its truth.json."""
    write_patient(folder, pid, seed)
    (folder / "truth.json").unlink()
    return folder


def _write_junk(root: Path) -> Path:
    """Write a folder of non-DICOM, empty and truncated files."""
    junk = root / "junk"
    junk.mkdir(parents=True)
    (junk / "notes.txt").write_bytes(b"this is not DICOM at all\n")
    (junk / "empty.dcm").write_bytes(b"")
    good = _patient(root / "_source", "BRK-SRC", 100)
    data = (good / "RTSTRUCT.dcm").read_bytes()
    (junk / "truncated.dcm").write_bytes(data[: len(data) // 2])
    shutil.rmtree(good)
    return junk


def _halve_dose_grid(path: Path) -> None:
    """Shrink the dose grid to its lower half of frames: the structures stick out."""
    ds = pydicom.dcmread(path)
    frames = int(ds.NumberOfFrames)
    keep = frames // 2
    arr = ds.pixel_array[:keep]
    ds.NumberOfFrames = keep
    ds.GridFrameOffsetVector = list(ds.GridFrameOffsetVector)[:keep]
    ds.PixelData = arr.astype(arr.dtype).tobytes()
    ds.save_as(path, enforce_file_format=True)


def build_broken_corpus(root: Path) -> list[Case]:
    """Write the broken corpus under ``root``; one sub-folder per case."""
    cases: list[Case] = []

    def patient(name: str, pid: str, seed: int) -> Path:
        return _patient(root / name, pid, seed)

    junk = _write_junk(root)
    cases.append(Case("non-dicom and unreadable", junk, "held:not-dicom,unreadable"))

    f = patient("no_patient_id", "BRK-NOPID", 101)
    for p in f.glob("*.dcm"):
        edit(p, PatientID="")
    cases.append(Case("DICOM without PatientID", f, "held:no-patient-id"))

    f = patient("dose_without_plan", "BRK-NOPLAN", 102)
    (f / "RTPLAN.dcm").unlink()
    cases.append(Case("RTDOSE whose plan is missing", f, "warning:plan-missing"))

    f = patient("struct_without_ct", "BRK-NOCT", 103)
    for p in f.glob("CT_*.dcm"):
        p.unlink()
    cases.append(Case("RTSTRUCT whose CT is missing", f, "warning:ct-missing"))

    f = patient("ct_missing_slice", "BRK-GAP", 104)
    cts = sorted(f.glob("CT_*.dcm"))
    cts[len(cts) // 2].unlink()
    cases.append(Case("CT with a missing slice", f, "warning:ct-incomplete"))

    f = root / "two_patients"
    write_patient(f / "a", "BRK-TWO-A", 105)
    write_patient(f / "b", "BRK-TWO-B", 106)
    for sub in ("a", "b"):
        (f / sub / "truth.json").unlink()
    cases.append(Case("two patients in one folder", f, "loaded:2"))

    f = patient("outside_grid", "BRK-OUT", 107)
    _halve_dose_grid(f / "RTDOSE.dcm")
    cases.append(
        Case("structure outside the dose grid", f, "warning:outside-dose-grid")
    )

    f = patient("relative_dose", "BRK-REL", 108)
    edit(f / "RTDOSE.dcm", DoseUnits="RELATIVE")
    cases.append(Case("relative dose without normalisation", f, "held:dose-unusable"))

    f = patient("frame_mismatch", "BRK-FOR", 109)
    edit(f / "RTDOSE.dcm", FrameOfReferenceUID=str(generate_uid()))
    cases.append(
        Case("frame of reference mismatch", f, "held:frame-of-reference-mismatch")
    )

    f = patient("burned_in", "BRK-BURN", 110)
    edit(f / "CT_0001.dcm", BurnedInAnnotation="YES")
    cases.append(
        Case("burned-in annotation on one CT slice", f, "object:burned-in-annotation")
    )
    return cases


def bare_dataset_bytes(path: Path) -> bytes:
    """Return a file's data set without preamble and file meta (no Part-10 header)."""
    ds = pydicom.dcmread(path)
    del ds.file_meta
    ds.preamble = None
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=True, little_endian=True)
    data = buffer.getvalue()
    assert data[128:132] != b"DICM"
    return data


CHECKED_TABLES = (
    "person", "care_site", "episode", "episode_event", "procedure_occurrence",
    "measurement", "observation", "image_occurrence", "image_feature", "dvh", "dvh_metric",
    "ingest_dataset", "ingest_object", "stored_file", "stored_file_owner",
    "quarantine_item", "mapping_rule",
)  # fmt: skip


def table_checksums(connection: Any) -> dict[str, tuple[int, str]]:
    """Row count and SHA-256 of the ordered contents of every ingest table."""
    import hashlib

    from sqlalchemy import MetaData, Table, select

    meta = MetaData()
    out: dict[str, tuple[int, str]] = {}
    for name in CHECKED_TABLES:
        table = Table(name, meta, autoload_with=connection)
        rows = connection.execute(select(table).order_by(*table.columns)).all()
        digest = hashlib.sha256()
        for row in rows:
            digest.update(repr(tuple(row)).encode())
        out[name] = (len(rows), digest.hexdigest())
    return out
