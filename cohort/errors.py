"""Errors of cohort management; each one line a person can act on."""

from __future__ import annotations

from omop.errors import RTCohortError

__all__ = [
    "AuditError",
    "AuditKeyError",
    "AuditKeyMissingError",
    "AuthenticationError",
    "CohortError",
    "ConsentRecordedTwiceError",
    "ConsentRefusedError",
    "ContactKeyError",
    "DuplicateError",
    "ExpiredTokenError",
    "ForgedTokenError",
    "IllegalTransitionError",
    "InvalidInputError",
    "InvitationError",
    "NoLongerAvailableError",
    "PermissionDeniedError",
    "ProjectExpiredError",
    "UnknownCentreError",
    "UnknownPersonError",
    "UnknownProjectError",
    "UnknownUserError",
    "UsedTokenError",
]


class CohortError(RTCohortError):
    """Base class of cohort-management errors."""


class InvalidInputError(CohortError, ValueError):
    """A value is malformed or missing (year of birth, sex, site, date...)."""


class UnknownCentreError(CohortError, LookupError):
    """No centre (CARE_SITE) has this code."""


class UnknownPersonError(CohortError, LookupError):
    """No person has this pseudonym (or the person belongs to another centre)."""


class UnknownUserError(CohortError, LookupError):
    """No platform account has this user name."""


class UnknownProjectError(CohortError, LookupError):
    """No project has this code."""


class DuplicateError(CohortError, ValueError):
    """The thing exists already (centre code, user name, project code)."""


class IllegalTransitionError(CohortError, ValueError):
    """A consent state change the state machine does not allow."""


class ConsentRecordedTwiceError(IllegalTransitionError):
    """The person is already in the state being recorded."""


class ConsentRefusedError(CohortError, PermissionError):
    """The patient declined or withdrew consent: no new data are accepted."""


class PermissionDeniedError(CohortError, PermissionError):
    """The acting user's role and memberships do not allow the action."""


class ProjectExpiredError(CohortError, ValueError):
    """The project is past its expiry date and grants nothing."""


class ContactKeyError(CohortError, ValueError):
    """The contact register was encrypted with another centre key."""


class InvitationError(CohortError, ValueError):
    """An invitation link cannot be redeemed."""


class ForgedTokenError(InvitationError):
    """The link's signature does not verify, or no invitation matches it."""


class ExpiredTokenError(InvitationError):
    """The link has expired."""


class UsedTokenError(InvitationError):
    """The link has been used already."""


class NoLongerAvailableError(InvitationError):
    """The patient declined, withdrew consent or died: the questionnaire is closed."""


class AuditError(CohortError):
    """The audit trail cannot be written or checked."""


class AuditKeyError(AuditError, ValueError):
    """The audit key file is damaged, or cannot be created or read."""


class AuditKeyMissingError(AuditError, FileNotFoundError):
    """The audit key file does not exist (``rtcohort db upgrade`` creates it)."""


class AuthenticationError(CohortError, PermissionError):
    """No valid credentials: unknown or malformed name, wrong secret, locked out."""
