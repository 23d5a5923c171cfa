"""Errors and data-quality warnings of the NTCP package.

Every error derives from :class:`NtcpError` (itself an
:class:`omop.errors.RTCohortError`) and from the natural builtin, so callers may catch
either. Warnings are named classes so that callers can filter or escalate them.
"""

from __future__ import annotations

from omop.errors import RTCohortError

__all__ = [
    "BoundaryEstimateWarning",
    "CohortCsvError",
    "DegenerateOutcomeError",
    "DvhValidationError",
    "EndpointSyntaxError",
    "FewEventsWarning",
    "MissingFractionsError",
    "ModelSpecError",
    "NonIdentifiableError",
    "NonIdentifiableWarning",
    "NtcpError",
    "NtcpWarning",
    "OpenProfileIntervalWarning",
    "UnknownModelError",
]


class NtcpError(RTCohortError):
    """Base class of NTCP errors."""


class DegenerateOutcomeError(NtcpError, ValueError):
    """The outcome has no events or only events; no model can be fitted."""


class DvhValidationError(NtcpError, ValueError):
    """A DVH is unusable: negative dose, negative volume, volumes not summing to 1."""


class MissingFractionsError(NtcpError, ValueError):
    """EQD2 was requested but the number of fractions of some patients is unknown."""


class NonIdentifiableError(NtcpError, RuntimeError):
    """The likelihood is flat or unbounded: the parameters cannot be estimated."""


class CohortCsvError(NtcpError, ValueError):
    """A cohort CSV file is malformed; the message names the line and the field."""


class EndpointSyntaxError(NtcpError, ValueError):
    """An endpoint specification does not follow the endpoint grammar."""


class ModelSpecError(NtcpError, ValueError):
    """A model specification (metric, covariates, stored model JSON) is invalid."""


class UnknownModelError(NtcpError, KeyError):
    """No published model with this identifier exists in the registry."""


class NtcpWarning(UserWarning):
    """Base class of NTCP data-quality warnings."""


class FewEventsWarning(NtcpWarning):
    """Too few events (or non-events) for the number of estimated parameters."""


class NonIdentifiableWarning(NtcpWarning):
    """A parameter is poorly identified: its profile interval is open on both sides."""


class OpenProfileIntervalWarning(NtcpWarning):
    """A profile-likelihood interval reached a search bound on one side."""


class BoundaryEstimateWarning(NtcpWarning):
    """A maximum-likelihood estimate lies on the boundary of the parameter space."""
