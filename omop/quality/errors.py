"""Failures of the data-quality checks."""

from __future__ import annotations

from omop.errors import RTCohortError

__all__ = ["ControlFileError", "QualityError"]


class QualityError(RTCohortError, RuntimeError):
    """The data-quality checks cannot be built or run."""


class ControlFileError(RTCohortError, ValueError):
    """A DQD control file (or our known-failures file) is missing or malformed."""
