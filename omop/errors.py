"""Errors shared by every rtcohort package.

Every error the platform raises derives from :class:`RTCohortError`; subclasses also
inherit the natural builtin so that callers may catch either.
"""

from __future__ import annotations

__all__ = [
    "AthenaLoadError",
    "DatabaseUnavailableError",
    "RTCohortError",
    "SchemaConflictError",
    "SpecError",
]


class RTCohortError(Exception):
    """Base class of every error raised by rtcohort."""


class SpecError(RTCohortError, ValueError):
    """The bundled OMOP specification CSVs could not be parsed."""


class DatabaseUnavailableError(RTCohortError, ConnectionError):
    """The database named by ``RTCOHORT_DATABASE_URL`` cannot be reached or opened."""


class SchemaConflictError(RTCohortError, RuntimeError):
    """The database already holds a schema that is not rtcohort's."""


class AthenaLoadError(RTCohortError, ValueError):
    """An Athena vocabulary file is malformed; the load was rolled back."""
