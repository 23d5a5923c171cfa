"""Errors and warnings of the ETL package (DICOM, DVH computation, pseudonymisation)."""

from __future__ import annotations

from omop.errors import RTCohortError

__all__ = [
    "ContourWarning",
    "CourseDoseError",
    "DeidRefusedError",
    "DicomParseError",
    "DoseGridError",
    "DoseQualityWarning",
    "EtlError",
    "GeometryError",
    "KeyCentreMismatchError",
    "KeyFileError",
    "MetricSyntaxError",
    "OutsideGridWarning",
    "PairingError",
    "PatientIdError",
    "SchedulerError",
    "StageInterruptedError",
    "StructureError",
]


class EtlError(RTCohortError):
    """Base class of ETL errors."""


class DicomParseError(EtlError, ValueError):
    """A DICOM object is unreadable, truncated or lacks a required attribute."""


class DoseGridError(EtlError, ValueError):
    """A dose grid is unusable (units, scaling, geometry)."""


class GeometryError(EtlError, ValueError):
    """Contours and dose grid do not share a usable geometry.

    Raised for non-orthogonal direction cosines and for contours that do not lie on
    planes parallel to the slices of the dose grid.
    """


class StructureError(EtlError, ValueError):
    """A structure cannot give a DVH (no usable contour, wrong contour type)."""


class PairingError(EtlError, ValueError):
    """A dose object and a structure set cannot be paired (frames of reference)."""


class MetricSyntaxError(EtlError, ValueError):
    """A dose-metric string does not follow the TG-263 metric syntax."""


class DoseQualityWarning(UserWarning):
    """Base class of data-quality warnings raised while computing dose statistics."""


class ContourWarning(DoseQualityWarning):
    """A contour was skipped (fewer than three points, degenerate, duplicated)."""


class OutsideGridWarning(DoseQualityWarning):
    """Part or all of a structure lies outside the dose grid; its volume is reported."""


class KeyFileError(EtlError, ValueError):
    """A centre key file is missing, unreadable, malformed or fails its check."""


class KeyCentreMismatchError(KeyFileError):
    """A centre key file belongs to another centre than the one named."""


class DeidRefusedError(EtlError, ValueError):
    """An object cannot be pseudonymised; ``reason`` says why (quarantined)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PatientIdError(EtlError, ValueError):
    """A patient identifier is empty or malformed (the message never repeats it)."""


class SchedulerError(EtlError, ConnectionError):
    """A Dask scheduler address is malformed, unreachable or has no workers.

    The message names the address.
    """


class StageInterruptedError(EtlError, RuntimeError):
    """A worker died while preparing files; nothing of the run was loaded (re-run)."""


class CourseDoseError(EtlError, ValueError):
    """The doses of a course cannot be summed; the message names files and reason.

    Frames of reference differ, a grid is oriented differently, fractions are
    missing, or a per-beam dose set is incomplete.
    """
