"""Small helpers to read DICOM objects for the RT readers.

Reads files with or without a Part-10 header (preamble and file meta), turns every
pydicom failure into :class:`~etl.errors.DicomParseError` naming the file, and fetches
required attributes with an error naming the attribute.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from etl.errors import DicomParseError

__all__ = ["describe", "read_dataset", "require"]

Source = str | os.PathLike[str] | Dataset


def describe(source: Source) -> str:
    """Return a short name for ``source`` for messages (path or SOP Instance UID)."""
    if isinstance(source, Dataset):
        uid = source.get("SOPInstanceUID", "")
        return f"dataset {uid}" if uid else "dataset"
    return str(source)


def read_dataset(source: Source, *, stop_before_pixels: bool = False) -> Dataset:
    """Read a DICOM object from a path, or return a dataset unchanged.

    Parameters
    ----------
    source
        A path, or an already read :class:`pydicom.dataset.Dataset`.
    stop_before_pixels
        Skip the pixel data (header-only reads for indexing).

    Returns
    -------
    pydicom.dataset.Dataset

    Raises
    ------
    DicomParseError
        When the file is missing, not DICOM, or truncated.
    """
    if isinstance(source, Dataset):
        return source
    path = Path(source)
    try:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:
            # No preamble / 'DICM' prefix: accept a bare dataset (Part-10 header absent)
            # only if it starts with a plausible group 0008 element.
            with path.open("rb") as fh:
                head = fh.read(4)
            if len(head) < 4 or head[:2] not in (b"\x08\x00", b"\x02\x00"):  # noqa: PLR2004
                raise DicomParseError(f"{path}: not a DICOM file") from None
            ds = pydicom.dcmread(
                path, stop_before_pixels=stop_before_pixels, force=True
            )
    except DicomParseError:
        raise
    except FileNotFoundError as exc:
        raise DicomParseError(f"{path}: no such file") from exc
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DicomParseError(f"{path}: unreadable DICOM ({exc})") from exc
    if "SOPClassUID" not in ds and "Modality" not in ds:
        raise DicomParseError(
            f"{path}: not a DICOM object (no SOP Class UID or Modality)"
        )
    return ds


def require(ds: Dataset, keyword: str, where: str) -> Any:
    """Return ``ds.<keyword>``, or raise :class:`DicomParseError` naming it.

    Parameters
    ----------
    ds
        The dataset.
    keyword
        The DICOM keyword, e.g. ``"DoseGridScaling"``.
    where
        The file or object description used in the message.
    """
    value = ds.get(keyword)
    if value is None or (isinstance(value, str | bytes | list) and len(value) == 0):
        raise DicomParseError(f"{where}: missing required attribute {keyword}")
    return value
