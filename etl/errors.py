"""Errors of the ETL package (DICOM reading, DVH computation, pseudonymisation)."""

from __future__ import annotations

from omop.errors import RTCohortError

__all__ = [
    "DeidRefusedError",
    "DicomParseError",
    "DoseGridError",
    "EtlError",
    "KeyCentreMismatchError",
    "KeyFileError",
    "MetricSyntaxError",
]


class EtlError(RTCohortError):
    """Base class of ETL errors."""


class DicomParseError(EtlError, ValueError):
    """A DICOM object is unreadable, truncated or lacks a required attribute."""


class DoseGridError(EtlError, ValueError):
    """A dose grid is unusable (units, scaling, geometry)."""


class MetricSyntaxError(EtlError, ValueError):
    """A dose-metric string does not follow the TG-263 metric syntax."""


class KeyFileError(EtlError, ValueError):
    """A centre key file is missing, unreadable, malformed or fails its integrity check."""


class KeyCentreMismatchError(KeyFileError):
    """A centre key file belongs to another centre than the one named."""


class DeidRefusedError(EtlError, ValueError):
    """An object cannot be pseudonymised; ``reason`` says why (it goes to quarantine)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
