"""Consent vocabulary: states, scopes, sex, the allowed transitions and their parsing.

Re-exported by :mod:`cohort.consent`, which records consent with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TypeVar

from cohort.errors import InvalidInputError

__all__ = [
    "ALLOWED",
    "ConsentScope",
    "ConsentState",
    "Sex",
    "parse_enum",
    "parse_scopes",
]

_E = TypeVar("_E", bound=StrEnum)


class ConsentState(StrEnum):
    """A person's consent state."""

    ELIGIBLE = "eligible"
    APPROACHED = "approached"
    CONSENTED = "consented"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class ConsentScope(StrEnum):
    """What a consent covers."""

    DATA = "data"
    PROMS = "proms"
    LINKAGE = "linkage"


class Sex(StrEnum):
    """Sex recorded at enrolment (OMOP gender concepts 8532 / 8507)."""

    F = "F"
    M = "M"


ALLOWED: dict[ConsentState, frozenset[ConsentState]] = {
    ConsentState.ELIGIBLE: frozenset({ConsentState.APPROACHED}),
    ConsentState.APPROACHED: frozenset({ConsentState.CONSENTED, ConsentState.DECLINED}),
    ConsentState.CONSENTED: frozenset({ConsentState.WITHDRAWN}),
    ConsentState.DECLINED: frozenset(),
    ConsentState.WITHDRAWN: frozenset(),
}


def parse_enum(kind: type[_E], value: _E | str, what: str) -> _E:
    """Parse ``value`` as a member of ``kind`` (errors name ``what``, the choices).

    Raises
    ------
    InvalidInputError
        When ``value`` is no member of ``kind``.
    """
    try:
        return kind(str(value).strip())
    except ValueError:
        allowed = "|".join(m.value for m in kind)
        raise InvalidInputError(f"{what} {value!r}: use {allowed}") from None


def parse_scopes(value: str | Iterable[ConsentScope | str]) -> frozenset[ConsentScope]:
    """Parse ``data,proms,linkage`` (or an iterable) into scopes."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return frozenset(
        parse_enum(ConsentScope, s, "consent scope") for s in items if str(s).strip()
    )
