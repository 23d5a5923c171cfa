"""Centres: CARE_SITE rows whose ``care_site_source_value`` is the centre code."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort.errors import DuplicateError, InvalidInputError, UnknownCentreError
from omop.cdm import CareSite

__all__ = ["add_centre", "centre_codes", "get_centre", "list_centres", "normalise_code"]

_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")


def normalise_code(code: str) -> str:
    """Return the centre code in upper case (1-20 of ``A-Z 0-9 _ -``).

    Examples
    --------
    >>> normalise_code(" ams01 ")
    'AMS01'
    """
    value = code.strip().upper()
    if not _CODE_RE.match(value):
        raise InvalidInputError(
            f"invalid centre code {code!r}: use 1-20 characters A-Z, 0-9, '_' or '-'"
        )
    return value


def add_centre(session: Session, code: str, name: str | None = None) -> CareSite:
    """Create a centre; raise :class:`DuplicateError` when the code exists."""
    value = normalise_code(code)
    existing = session.scalar(
        select(CareSite).where(CareSite.care_site_source_value == value)
    )
    if existing is not None:
        raise DuplicateError(f"centre {value} exists already")
    site = CareSite(care_site_source_value=value, care_site_name=name or value)
    session.add(site)
    session.flush()
    return site


def get_centre(session: Session, code: str) -> CareSite:
    """Return the centre with this code; raise :class:`UnknownCentreError`."""
    value = code.strip().upper()
    site = session.scalar(
        select(CareSite).where(CareSite.care_site_source_value == value)
    )
    if site is None:
        raise UnknownCentreError(f"unknown centre {value!r} (rtcohort centre add)")
    return site


def list_centres(session: Session) -> list[CareSite]:
    """Return every centre that has a code, ordered by code."""
    return list(
        session.scalars(
            select(CareSite)
            .where(CareSite.care_site_source_value.is_not(None))
            .order_by(CareSite.care_site_source_value)
        )
    )


def centre_codes(session: Session) -> dict[int, str]:
    """Return ``{care_site_id: code}`` of every centre."""
    return {
        c.care_site_id: str(c.care_site_source_value) for c in list_centres(session)
    }
