"""Look-ups shared by the cohort service modules."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cohort import consent
from cohort.errors import UnknownPersonError
from omop.cdm import CareSite, Person

__all__ = ["person_by_pseudonym"]


def person_by_pseudonym(
    session: Session, pseudonym: str, centre: CareSite | None = None
) -> Person:
    """Return the person with a pseudonym (at ``centre``, if given).

    Raises
    ------
    UnknownPersonError
        When no person has the pseudonym (at that centre).
    """
    person = consent.find_person(session, pseudonym)
    if person is None or (
        centre is not None and person.care_site_id != centre.care_site_id
    ):
        where = f" at centre {centre.care_site_source_value}" if centre else ""
        raise UnknownPersonError(f"unknown person {pseudonym}{where}")
    return person
