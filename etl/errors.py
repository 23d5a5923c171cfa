"""Errors of the ETL package (DICOM reading, DVH computation, pseudonymisation)."""

from __future__ import annotations

from omop.errors import RTCohortError

__all__ = ["DicomParseError", "DoseGridError", "EtlError", "MetricSyntaxError"]


class EtlError(RTCohortError):
    """Base class of ETL errors."""


class DicomParseError(EtlError, ValueError):
    """A DICOM object is unreadable, truncated or lacks a required attribute."""


class DoseGridError(EtlError, ValueError):
    """A dose grid is unusable (units, scaling, geometry)."""


class MetricSyntaxError(EtlError, ValueError):
    """A dose-metric string does not follow the TG-263 metric syntax."""
