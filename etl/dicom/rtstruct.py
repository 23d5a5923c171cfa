"""Read an RT Structure Set: ROIs with their contours in patient coordinates (mm).

The reader keeps every contour as stored; checks that concern the dose computation (too
few points, planes not parallel to the dose grid) are made by :mod:`etl.dose.dvh`.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from etl.dicom.enums import (
    ContourGeometricType,
    Modality,
    RTROIInterpretedType,
    normalise,
)
from etl.dicom.io import describe, read_dataset
from etl.errors import DicomParseError

__all__ = [
    "Roi",
    "StructureReferences",
    "StructureSet",
    "read_rtstruct",
    "structure_references",
]

_RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"


@dataclass(frozen=True)
class StructureReferences:
    """What a structure set refers to (ReferencedFrameOfReferenceSequence)."""

    frame_of_reference_uids: tuple[str, ...]
    series_uids: tuple[str, ...]
    image_uids: tuple[str, ...]


def _unique(values: Iterable[object]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in values if v))


def structure_references(ds: Dataset, *, images: bool = True) -> StructureReferences:
    """Return the frames of reference, series and images a structure set refers to.

    Works on a header-only read (``stop_before_pixels``); order kept, duplicates
    dropped. With ``images`` False the images are not read (``image_uids`` empty):
    their sequence, an item per CT image, is most of the parsing.
    """
    frames: list[object] = []
    series: list[object] = []
    image_uids: list[object] = []
    for ref in ds.get("ReferencedFrameOfReferenceSequence", []):
        frames.append(ref.get("FrameOfReferenceUID"))
        for study in ref.get("RTReferencedStudySequence", []):
            for ser in study.get("RTReferencedSeriesSequence", []):
                series.append(ser.get("SeriesInstanceUID"))
                if not images:
                    continue
                image_uids += [
                    i.get("ReferencedSOPInstanceUID")
                    for i in ser.get("ContourImageSequence", [])
                ]
    return StructureReferences(_unique(frames), _unique(series), _unique(image_uids))


@dataclass(frozen=True)
class Roi:
    """One region of interest of a structure set.

    Attributes
    ----------
    number : int
        ROINumber.
    name : str
        ROIName as stored (not mapped to TG-263).
    contour_type : str
        The ContourGeometricType of its contours (``CLOSED_PLANAR``, ``POINT``,
        ``OPEN_PLANAR``, ...); ``MIXED`` when they differ, ``""`` when it has none.
    contours : tuple of ndarray
        Each of shape (N, 3), patient coordinates in mm.
    interpreted_type : str or None
        RTROIInterpretedType (``PTV``, ``ORGAN``, ``EXTERNAL``, ...).
    frame_of_reference_uid : str
        ReferencedFrameOfReferenceUID of the ROI.
    """

    number: int
    name: str
    contour_type: ContourGeometricType | str
    contours: tuple[NDArray[np.float64], ...]
    interpreted_type: RTROIInterpretedType | str | None = None
    frame_of_reference_uid: str = ""


@dataclass(frozen=True)
class StructureSet:
    """An RT Structure Set.

    Attributes
    ----------
    sop_instance_uid : str
    frame_of_reference_uid : str
        The frame of reference the ROIs refer to (first of the referenced frames).
    rois : tuple of Roi
    referenced_series_uids : tuple of str
        Series (usually CT) the contours were drawn on.
    """

    sop_instance_uid: str
    frame_of_reference_uid: str
    rois: tuple[Roi, ...]
    referenced_series_uids: tuple[str, ...] = ()

    def roi(self, name_or_number: str | int) -> Roi:
        """Return the ROI with this number or (case-insensitive) name.

        Raises
        ------
        KeyError
            When there is no such ROI.
        """
        for roi in self.rois:
            if isinstance(name_or_number, int):
                if roi.number == name_or_number:
                    return roi
            elif roi.name.casefold() == name_or_number.casefold():
                return roi
        raise KeyError(name_or_number)


_CONTOUR_DATA = 0x30060050


def _fast_contour_values(item: Dataset) -> NDArray[np.float64] | None:
    """Parse a not yet decoded ContourData straight from its bytes, or return None.

    pydicom builds one Python object per decimal string (about 1 s for a structure set
    of a quarter of a million values); numpy parses the bytes at once. Anything unusual
    (already decoded, not ASCII, a value numpy does not read in full) returns None and
    takes the ordinary path.
    """
    raw = item.get_item(_CONTOUR_DATA)
    if not isinstance(raw, RawDataElement) or not isinstance(raw.value, bytes):
        return None
    text = raw.value.strip(b" \x00")
    if not text:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.fromstring(text.decode("ascii"), sep="\\")
    except (UnicodeDecodeError, ValueError):
        return None
    if values.size != text.count(b"\\") + 1 or not np.all(np.isfinite(values)):
        return None
    return values


_CONTOUR_GEOMETRIC_TYPE = 0x30060042


def _geometric_type(item: Dataset) -> ContourGeometricType | str:
    """ContourGeometricType of a contour item, read from its bytes when plain.

    A not yet decoded value of capital letters and underscores (space padded) is
    what pydicom would decode it to; anything else takes the ordinary path.
    """
    raw = item.get_item(_CONTOUR_GEOMETRIC_TYPE)
    if isinstance(raw, RawDataElement) and isinstance(raw.value, bytes):
        text = raw.value.strip(b" ")
        if text.replace(b"_", b"").isalpha() and text.isupper():
            return normalise(ContourGeometricType, text.decode("ascii"))
    return normalise(ContourGeometricType, item.get("ContourGeometricType"))


def _contour_points(item: Dataset, where: str, roi_number: int) -> NDArray[np.float64]:
    fast = _fast_contour_values(item)
    if fast is not None and fast.size % 3 == 0:
        return fast.reshape(-1, 3)
    data = item.get("ContourData")
    if data is None:
        return np.zeros((0, 3))
    try:
        pts = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DicomParseError(
            f"{where}: ROI {roi_number}: ContourData is not numeric"
        ) from exc
    if pts.size % 3:
        raise DicomParseError(
            f"{where}: ROI {roi_number}: ContourData holds {pts.size} values, "
            "not a multiple of 3"
        )
    return pts.reshape(-1, 3)


def read_rtstruct(source: str | os.PathLike[str] | Dataset) -> StructureSet:
    """Read an RTSTRUCT object.

    Parameters
    ----------
    source
        Path of the file (with or without Part-10 header) or a dataset.

    Returns
    -------
    StructureSet

    Raises
    ------
    DicomParseError
        Unreadable, not a structure set, or malformed contour data.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> ss = read_rtstruct(get_testdata_file("rtstruct.dcm"))
    >>> [(r.name, str(r.contour_type)) for r in ss.rois]
    [('patient', 'CLOSED_PLANAR'), ('Isocenter 1', 'POINT'), ('Isocenter 2', 'POINT')]
    """
    where = describe(source)
    ds = read_dataset(source)
    sop_class = str(ds.get("SOPClassUID", ""))
    if (
        sop_class != _RTSTRUCT_SOP_CLASS
        and normalise(Modality, ds.get("Modality")) != Modality.RTSTRUCT
    ):
        raise DicomParseError(
            f"{where}: not an RT Structure Set (SOP class {sop_class})"
        )

    refs = structure_references(ds, images=False)  # (the images are not kept)

    interpreted: dict[int, RTROIInterpretedType | str] = {}
    for obs in ds.get("RTROIObservationsSequence", []):
        if "ReferencedROINumber" in obs and obs.get("RTROIInterpretedType"):
            interpreted[int(obs.ReferencedROINumber)] = normalise(
                RTROIInterpretedType, obs.RTROIInterpretedType
            )

    contours_by_roi: dict[int, list[Dataset]] = {}
    for rc in ds.get("ROIContourSequence", []):
        if "ReferencedROINumber" not in rc:
            continue
        contours_by_roi.setdefault(int(rc.ReferencedROINumber), []).extend(
            rc.get("ContourSequence", [])
        )

    rois: list[Roi] = []
    for item in ds.get("StructureSetROISequence", []):
        if "ROINumber" not in item:
            raise DicomParseError(
                f"{where}: StructureSetROISequence item without ROINumber"
            )
        number = int(item.ROINumber)
        items = contours_by_roi.get(number, [])
        types = Counter(_geometric_type(c) for c in items)
        contour_type: ContourGeometricType | str
        if not types:
            contour_type = ""
        elif len(types) == 1:
            contour_type = next(iter(types))
        else:
            contour_type = "MIXED"
        rois.append(
            Roi(
                number=number,
                name=str(item.get("ROIName", "")),
                contour_type=contour_type,
                contours=tuple(_contour_points(c, where, number) for c in items),
                interpreted_type=interpreted.get(number),
                frame_of_reference_uid=str(
                    item.get("ReferencedFrameOfReferenceUID", "")
                ),
            )
        )
    frame = (
        refs.frame_of_reference_uids[0]
        if refs.frame_of_reference_uids
        else next((r.frame_of_reference_uid for r in rois), "")
    )
    return StructureSet(
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        frame_of_reference_uid=frame,
        rois=tuple(rois),
        referenced_series_uids=refs.series_uids,
    )
