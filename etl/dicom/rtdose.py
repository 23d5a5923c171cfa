"""Read an RT Dose object into a :class:`~etl.dose.grid.DoseGrid` (dose in Gy).

Geometry comes from ImagePositionPatient, ImageOrientationPatient, PixelSpacing and
GridFrameOffsetVector (relative form, first offset 0, and absolute form, first offset
equal to the z of ImagePositionPatient); values from DoseGridScaling and DoseUnits
(``GY`` and ``CGY`` are converted to Gy; ``RELATIVE`` needs a reference dose).
"""

from __future__ import annotations

import os

import numpy as np
from pydicom.dataset import Dataset

from etl.dicom.enums import (
    DoseSummationType,
    DoseType,
    DoseUnits,
    Modality,
    normalise,
)
from etl.dicom.io import describe, read_dataset, require
from etl.dose.grid import DoseGrid, check_orthonormal
from etl.errors import DicomParseError, DoseGridError, GeometryError

__all__ = ["MAX_DOSE_VOXELS", "DoseGrid", "check_dose_header", "read_rtdose"]

_RTDOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"
#: Largest relative deviation between frame offsets accepted as a uniform spacing.
_UNIFORM_TOLERANCE = 1e-3
#: Most voxels of a dose grid read (a 1 mm grid of 34 x 34 x 34 cm): an import of
#: one takes about 1.1 GB (decoded pixels, Gy as float64, scaled copy).
MAX_DOSE_VOXELS = 40_000_000


def _floats(
    value: object, where: str, keyword: str, n: int | None = None
) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    except (TypeError, ValueError) as exc:
        raise DicomParseError(f"{where}: {keyword} is not numeric ({value!r})") from exc
    if n is not None and arr.size != n:
        raise DicomParseError(
            f"{where}: {keyword} must have {n} values, has {arr.size}"
        )
    if not np.all(np.isfinite(arr)):
        raise DicomParseError(f"{where}: {keyword} holds non-finite values")
    return arr


def check_dose_header(ds: Dataset, scaling: float, where: str = "RTDOSE") -> None:
    """Refuse a dose whose scaling or size cannot be a dose grid (before decoding).

    ``DoseGridScaling`` must be finite and > 0: zero turns every dose into 0 Gy
    (all-zero DVHs and metrics), a negative value into negative doses. The grid may
    hold at most :data:`MAX_DOSE_VOXELS` voxels, so that reading it stays within the
    memory an import may take (docs/ingest.md).

    Parameters
    ----------
    ds
        The RTDOSE data set (Rows, Columns, NumberOfFrames are read).
    scaling
        Its DoseGridScaling.
    where
        The file, for the message.

    Raises
    ------
    DoseGridError
        Naming the file, the attribute and the value.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> check_dose_header(Dataset(), -1.0)
    Traceback (most recent call last):
    ...
    etl.errors.DoseGridError: RTDOSE: DoseGridScaling must be finite and > 0, got -1
    """
    if not (np.isfinite(scaling) and scaling > 0):
        raise DoseGridError(
            f"{where}: DoseGridScaling must be finite and > 0, got {scaling:g}"
        )
    try:
        voxels = int(ds.get("Rows", 0) or 0) * int(ds.get("Columns", 0) or 0)
        voxels *= int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError) as exc:
        raise DicomParseError(
            f"{where}: Rows/Columns/NumberOfFrames not numeric"
        ) from exc
    if voxels > MAX_DOSE_VOXELS:
        raise DoseGridError(
            f"{where}: Rows x Columns x NumberOfFrames = {voxels:,} voxels, more than "
            f"{MAX_DOSE_VOXELS:,}"
        )


def read_rtdose(
    source: str | os.PathLike[str] | Dataset,
    *,
    relative_reference_gy: float | None = None,
) -> DoseGrid:
    """Read an RTDOSE object.

    Parameters
    ----------
    source
        Path of the file (with or without Part-10 header) or a dataset.
    relative_reference_gy
        Dose in Gy that a relative value of 1.0 stands for. Required when DoseUnits is
        ``RELATIVE``; ignored otherwise.

    Returns
    -------
    DoseGrid
        Dose in Gy, shape ``(frames, rows, columns)``.

    Raises
    ------
    DicomParseError
        Unreadable file, not an RT Dose, or a required attribute missing (including
        DoseGridScaling).
    DoseGridError
        Unknown units, relative dose without a reference, non-uniform frame offsets.
    GeometryError
        Non-orthogonal direction cosines.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> grid = read_rtdose(get_testdata_file("rtdose.dcm"), relative_reference_gy=2.0)
    >>> grid.dose_gy.shape, grid.spacing_mm
    ((15, 10, 10), (10.0, 10.0, 5.0))
    """
    where = describe(source)
    ds = read_dataset(source)
    sop_class = str(ds.get("SOPClassUID", ""))
    if (
        sop_class != _RTDOSE_SOP_CLASS
        and normalise(Modality, ds.get("Modality")) != Modality.RTDOSE
    ):
        raise DicomParseError(f"{where}: not an RT Dose object (SOP class {sop_class})")

    unit_factor = _gy_per_unit(ds, where, relative_reference_gy)
    if "DoseGridScaling" not in ds or ds.DoseGridScaling in (None, ""):
        raise DicomParseError(f"{where}: missing required attribute DoseGridScaling")
    scaling = float(_floats(ds.DoseGridScaling, where, "DoseGridScaling", 1)[0])
    check_dose_header(ds, scaling, where)

    ipp = _floats(
        require(ds, "ImagePositionPatient", where), where, "ImagePositionPatient", 3
    )
    row_dir, col_dir, normal = _orientation(ds, where)
    ps = _floats(require(ds, "PixelSpacing", where), where, "PixelSpacing", 2)
    # PixelSpacing = (row spacing = between rows, i.e. along j; column spacing along i).
    dj, di = float(ps[0]), float(ps[1])
    if di <= 0 or dj <= 0:
        raise DoseGridError(
            f"{where}: PixelSpacing must be positive, got {ps.tolist()}"
        )
    pixels = _frames(ds, where)
    slice_dir, dk = _slice_axis(ds, where, pixels.shape[0], normal, di)

    # As floats and scaled in one pass (the dose of a plan is often 20 MB+).
    arr = np.multiply(pixels, scaling * unit_factor, dtype=np.float64)
    return DoseGrid(
        dose_gy=arr,
        origin_mm=ipp,
        row_dir=row_dir,
        col_dir=col_dir,
        slice_dir=slice_dir,
        spacing_mm=(di, dj, dk),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        dose_type=normalise(DoseType, ds.get("DoseType")),
        summation_type=normalise(DoseSummationType, ds.get("DoseSummationType")),
        units=DoseUnits.GY,
    )


def _gy_per_unit(ds: Dataset, where: str, relative_reference_gy: float | None) -> float:
    """Gy per unit of DoseUnits (the reference dose for ``RELATIVE``)."""
    units = normalise(DoseUnits, require(ds, "DoseUnits", where))
    if units == DoseUnits.GY:
        return 1.0
    if units == DoseUnits.CGY:
        return 0.01
    if units == DoseUnits.RELATIVE:
        if relative_reference_gy is None:
            raise DoseGridError(
                f"{where}: DoseUnits is RELATIVE and no reference dose was given "
                "(relative dose without a normalisation)"
            )
        return float(relative_reference_gy)
    raise DoseGridError(f"{where}: unknown DoseUnits {units!r}")


def _orientation(ds: Dataset, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return unit row and column directions (ImageOrientationPatient), normal."""
    iop = _floats(
        require(ds, "ImageOrientationPatient", where),
        where,
        "ImageOrientationPatient",
        6,
    )
    row_dir, col_dir = iop[:3], iop[3:]
    try:
        check_orthonormal(row_dir, col_dir)
    except GeometryError as exc:
        raise GeometryError(f"{where}: {exc}") from None
    row_dir = row_dir / np.linalg.norm(row_dir)
    col_dir = col_dir / np.linalg.norm(col_dir)
    return row_dir, col_dir, np.cross(row_dir, col_dir)


_NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")


def _native_pixels(ds: Dataset) -> np.ndarray | None:
    """Return the stored values of plain native pixel data, read in place.

    Little-endian, one sample, 16 or 32 bits all stored, and exactly as many bytes
    as the header says: what pydicom would return. None otherwise (pydicom decodes).
    """
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if syntax not in _NATIVE_LITTLE_ENDIAN or "PixelData" not in ds:
        return None
    try:
        bits, stored = int(ds.BitsAllocated), int(ds.BitsStored)
        plain = (
            int(ds.get("SamplesPerPixel", 1)) == 1
            and bits in (16, 32)
            and stored == bits
            and int(ds.get("HighBit", bits - 1)) == bits - 1
            and int(ds.PixelRepresentation) in (0, 1)
        )
        shape = (int(ds.get("NumberOfFrames", 1) or 1), int(ds.Rows), int(ds.Columns))
        signed = int(ds.PixelRepresentation) == 1
    except (AttributeError, TypeError, ValueError):
        return None
    raw = ds.PixelData
    n = shape[0] * shape[1] * shape[2]
    if not (plain and isinstance(raw, bytes) and len(raw) == n * bits // 8):
        return None
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
    return np.frombuffer(raw, dtype=dtype, count=n).reshape(shape)


def _frames(ds: Dataset, where: str) -> np.ndarray:
    """Return stored pixel values, shape ``(frames, rows, columns)``.

    Possibly the dataset's own values (read-only): the caller makes the dose a new
    array.
    """
    native = _native_pixels(ds)
    if native is not None:
        return native
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types on truncated pixel data
        raise DicomParseError(f"{where}: pixel data unreadable ({exc})") from exc
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    arr = np.asarray(pixels)
    if arr.ndim == 2:  # noqa: PLR2004
        arr = arr[np.newaxis]
    if arr.shape[0] != frames:
        raise DicomParseError(
            f"{where}: NumberOfFrames is {frames} but pixel data holds {arr.shape[0]}"
        )
    return arr


def _slice_axis(
    ds: Dataset, where: str, frames: int, normal: np.ndarray, di: float
) -> tuple[np.ndarray, float]:
    """Direction and spacing of frames (GridFrameOffsetVector; one frame: thickness)."""
    if frames <= 1:
        thickness = ds.get("SliceThickness")
        dk = (
            float(thickness)
            if thickness not in (None, "") and float(thickness) > 0
            else di
        )
        return normal, dk
    gfov = _floats(
        require(ds, "GridFrameOffsetVector", where), where, "GridFrameOffsetVector"
    )
    if gfov.size != frames:
        raise DicomParseError(
            f"{where}: GridFrameOffsetVector: {gfov.size} values, {frames} frames"
        )
    if gfov[0] != 0.0:
        # Absolute form: offsets are positions along the normal; make them relative.
        gfov = gfov - gfov[0]
    steps = np.diff(gfov)
    step = float(np.mean(steps))
    if step == 0.0 or np.any(np.abs(steps - step) > _UNIFORM_TOLERANCE * abs(step)):
        raise DoseGridError(
            f"{where}: GridFrameOffsetVector is not uniformly spaced "
            f"(steps {np.unique(np.round(steps, 4)).tolist()})"
        )
    return (normal if step > 0 else -normal), abs(step)
