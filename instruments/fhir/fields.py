"""Fields every rtcohort FHIR resource shares: id key, subject, timepoint extension."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic

from instruments.fhir.urls import PSEUDONYM_SYSTEM, TIMEPOINT_EXTENSION_URL

__all__ = [
    "SubjectIdentifier",
    "resource_key",
    "subject_of",
    "timepoint_extension",
    "timepoint_of",
]


@dataclass(frozen=True)
class SubjectIdentifier:
    """The patient of a resource as a FHIR identifier (system and value).

    ``value`` may be a direct hospital identifier: never log it; pseudonymise it with
    the centre key unless :attr:`is_pseudonym`.
    """

    system: str
    value: str

    @property
    def is_pseudonym(self) -> bool:
        """Whether the value is already an rtcohort pseudonym."""
        return self.system == PSEUDONYM_SYSTEM

    def as_fhir(self) -> dict[str, Any]:
        """Return the ``Reference`` JSON of this subject."""
        return {"identifier": {"system": self.system, "value": self.value}}

    def __repr__(self) -> str:  # keep identifiers out of logs and tracebacks
        shown = self.value if self.is_pseudonym else "***"
        return f"SubjectIdentifier(system={self.system!r}, value={shown!r})"


def resource_key(resource: pydantic.BaseModel, path: str, problems: list[str]) -> str:
    """Return the idempotency key of a resource: its id, else its first identifier."""
    rid = getattr(resource, "id", None)
    if rid:
        return str(rid)
    identifiers: Any = getattr(resource, "identifier", None)
    if isinstance(identifiers, list):
        identifiers = identifiers[0] if identifiers else None
    first: Any = identifiers
    if first is not None and first.value:
        return f"{first.system or ''}|{first.value}"
    problems.append(
        f"{path}.id: missing (an id or identifier is needed to deduplicate)"
    )
    return ""


def subject_of(resource: Any, path: str, problems: list[str]) -> SubjectIdentifier:
    """Return the ``subject`` identifier of a resource; add a problem if missing."""
    identifier = resource.subject.identifier if resource.subject else None
    if identifier is None or not identifier.system or not identifier.value:
        problems.append(
            f"{path}.subject.identifier: missing system or value (a Patient identifier"
            " or an rtcohort pseudonym is needed)"
        )
        return SubjectIdentifier("", "")
    return SubjectIdentifier(str(identifier.system), str(identifier.value))


def timepoint_extension(code: str) -> dict[str, Any]:
    """Return the extension JSON that names a follow-up timepoint."""
    return {"url": TIMEPOINT_EXTENSION_URL, "valueCode": code}


def timepoint_of(resource: Any) -> str | None:
    """Return the timepoint code of a resource's timepoint extension, if any."""
    for ext in resource.extension or []:
        if ext.url == TIMEPOINT_EXTENSION_URL and (ext.valueCode or ext.valueString):
            return str(ext.valueCode or ext.valueString)
    return None
