"""Vital status: last contact and death (DEATH); both extend the OBSERVATION_PERIOD.

The NTCP models censor on these: a person is followed from consent until death or
the last contact, whichever the OBSERVATION_PERIOD end holds.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cohort.errors import InvalidInputError
from omop.cdm import Death
from omop.cohort_tables import Enrolment
from omop.observation_period import extend_observation_period
from omop.vocab.standard import REGISTRY

__all__ = [
    "DEATH_TYPE_CONCEPT_ID",
    "VitalStatus",
    "death_dates",
    "record_death",
    "record_last_contact",
    "vital_status",
]

DEATH_TYPE_CONCEPT_ID = REGISTRY


def _enrolled(session: Session, person_id: int) -> Enrolment:
    enrolment = session.get(Enrolment, person_id)
    if enrolment is None or enrolment.consented_date is None:
        raise InvalidInputError("the person was never enrolled (no consent recorded)")
    return enrolment


def record_last_contact(session: Session, person_id: int, day: datetime.date) -> None:
    """Record a contact on ``day``; the OBSERVATION_PERIOD extends to it.

    Raises
    ------
    InvalidInputError
        When the person was never enrolled, is dead before ``day``, or ``day`` is
        before enrolment.
    """
    enrolment = _enrolled(session, person_id)
    assert enrolment.consented_date is not None
    if day < enrolment.consented_date:
        raise InvalidInputError(f"last contact {day} is before enrolment")
    death = session.get(Death, person_id)
    if death is not None and day > death.death_date:
        raise InvalidInputError(f"last contact {day} is after the recorded death")
    if enrolment.last_contact_date is None or day > enrolment.last_contact_date:
        enrolment.last_contact_date = day
    extend_observation_period(session, person_id, enrolment.consented_date, day)
    session.flush()


def record_death(session: Session, person_id: int, day: datetime.date) -> None:
    """Record a death: a DEATH row, and the OBSERVATION_PERIOD ends on ``day``.

    Raises
    ------
    InvalidInputError
        When a death is recorded already or the date is before enrolment.
    """
    enrolment = _enrolled(session, person_id)
    assert enrolment.consented_date is not None
    if session.get(Death, person_id) is not None:
        raise InvalidInputError("a death is recorded already for this person")
    if day < enrolment.consented_date:
        raise InvalidInputError(f"death {day} is before enrolment")
    session.add(
        Death(
            person_id=person_id,
            death_date=day,
            death_type_concept_id=DEATH_TYPE_CONCEPT_ID,
        )
    )
    if enrolment.last_contact_date is None or day > enrolment.last_contact_date:
        enrolment.last_contact_date = day
    extend_observation_period(session, person_id, enrolment.consented_date, day)
    session.flush()


@dataclass(frozen=True)
class VitalStatus:
    """Follow-up of one person for censoring."""

    person_id: int
    last_contact_date: datetime.date | None
    death_date: datetime.date | None


def vital_status(session: Session, person_ids: list[int]) -> dict[int, VitalStatus]:
    """Return last contact and death of each person."""
    rows = session.execute(
        select(Enrolment.person_id, Enrolment.last_contact_date, Death.death_date)
        .outerjoin(Death, Death.person_id == Enrolment.person_id)
        .where(Enrolment.person_id.in_(person_ids))
    ).all()
    return {int(p): VitalStatus(int(p), c, d) for p, c, d in rows}


def death_dates(
    session: Session, persons: Select[Any]
) -> list[tuple[int, datetime.date]]:
    """Return ``(person_id, death_date)`` of the persons in ``persons`` who died.

    ``persons`` is a SQL selection of person ids (one query, set-based).
    """
    rows = session.execute(
        select(Death.person_id, Death.death_date).where(Death.person_id.in_(persons))
    ).all()
    return [(int(p), day) for p, day in rows]
