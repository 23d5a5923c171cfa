"""The plan dose of a complete per-beam dose set, written as an RTDOSE object.

A per-beam dose set (``DoseSummationType`` BEAM, one RTDOSE per beam of one plan)
summed by :func:`etl.dose.course.sum_beams` becomes one RTDOSE of
``DoseSummationType`` PLAN, so that the import computes and loads it like any plan
dose. Its header is the first beam dose's (already pseudonymised: patient, study,
frame of reference and plan reference kept), with:

- a SOP Instance UID and a Series Instance UID derived from the beam doses' SOP
  Instance UIDs (``2.25.`` + 128 bits of their SHA-256), so a re-sent set maps to the
  same object;
- the summed grid's geometry and a 32-bit pixel array with ``DoseGridScaling`` =
  maximum / (2^32 - 1) (the rounding error is at most half that, in Gy);
- no beam reference (``ReferencedFractionGroupSequence`` removed) and no stored DVH.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.uid import UID, ExplicitVRLittleEndian

from etl.dicom.io import read_dataset
from etl.dose.grid import DoseGrid

__all__ = ["beam_sum_uids", "write_beam_sum"]

_MAX_U32 = 2**32 - 1


def _uid(text: str) -> str:
    return "2.25." + str(int.from_bytes(hashlib.sha256(text.encode()).digest()[:16]))


def beam_sum_uids(beam_uids: Sequence[str]) -> tuple[str, str]:
    """Return the (SOP Instance UID, Series Instance UID) of a beam set's sum.

    Examples
    --------
    >>> a = beam_sum_uids(["1.2.2", "1.2.1"])
    >>> a == beam_sum_uids(["1.2.1", "1.2.2"]), a[0].startswith("2.25."), a[0] != a[1]
    (True, True, True)
    """
    key = "+".join(sorted(beam_uids))
    return _uid(f"beam sum {key}"), _uid(f"beam sum series {key}")


def write_beam_sum(first_beam: Path, grid: DoseGrid, beam_uids: Sequence[str]) -> bytes:
    """Return the Part-10 bytes of the RTDOSE (PLAN) of a summed beam set.

    Parameters
    ----------
    first_beam
        The RTDOSE file of the set's first beam (its header is kept).
    grid
        The summed dose (:attr:`etl.dose.course.BeamSum.grid`), in Gy.
    beam_uids
        The SOP Instance UIDs of the beam doses summed.
    """
    ds = read_dataset(first_beam)
    sop, series = beam_sum_uids(beam_uids)
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SeriesInstanceUID = series
    ds.SeriesDescription = f"sum of {len(beam_uids)} beam doses"[:64]
    ds.DoseSummationType = "PLAN"
    ds.DoseUnits = "GY"
    for ref in ds.get("ReferencedRTPlanSequence", []):
        if "ReferencedFractionGroupSequence" in ref:
            del ref.ReferencedFractionGroupSequence
    for keyword in (
        "DVHSequence",
        "DVHNormalizationPoint",
        "DVHNormalizationDoseValue",
    ):
        if keyword in ds:
            delattr(ds, keyword)
    dose = np.clip(np.asarray(grid.dose_gy, dtype=np.float64), 0.0, None)
    peak = float(dose.max()) if dose.size else 0.0
    scaling = peak / _MAX_U32 if peak > 0 else 1.0
    frames, rows, cols = grid.shape
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.ImagePositionPatient = [round(float(v), 6) for v in grid.origin_mm]
    ds.ImageOrientationPatient = [
        round(float(v), 9) for v in (*grid.row_dir, *grid.col_dir)
    ]
    di, dj, dk = grid.spacing_mm
    ds.PixelSpacing = [round(dj, 6), round(di, 6)]
    normal = np.cross(grid.row_dir, grid.col_dir)
    step = dk * (1.0 if float(np.dot(grid.slice_dir, normal)) >= 0 else -1.0)
    ds.GridFrameOffsetVector = [round(k * step, 6) for k in range(frames)]
    if "FrameIncrementPointer" not in ds:
        ds.FrameIncrementPointer = 0x3004000C
    ds.DoseGridScaling = f"{scaling:.10e}"
    ds.PixelData = np.rint(dose / scaling).astype("<u4").tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
