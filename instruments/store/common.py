"""What the PROM and toxicity writers share: the timepoint visit, concepts, outcomes.

See :mod:`instruments.store` for the OMOP conventions. Functions take the session first
and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from instruments.errors import InstrumentError
from omop.cdm import Death, Person, VisitOccurrence
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import UnknownConceptError, load_registry, our_concept_id
from omop.vocab.standard import CASE_REPORT_FORM, NO_MATCHING_CONCEPT, OUTPATIENT_VISIT

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = [
    "CHUNK",
    "CONDITION_FIELD",
    "NO_CONCEPT",
    "SURVEY_FIELD",
    "TIMEPOINT_VOCAB",
    "Assessment",
    "Persons",
    "StoreError",
    "StoreOutcome",
    "check_plausible_date",
    "field_id",
    "frame",
    "our_concept",
    "person_id_for_pseudonym",
    "timepoint_code",
    "timepoint_codes",
    "visit_for",
    "where_persons",
]

NO_CONCEPT = NO_MATCHING_CONCEPT
SURVEY_FIELD = "survey_conduct.survey_conduct_id"
CONDITION_FIELD = "condition_occurrence.condition_occurrence_id"
TIMEPOINT_VOCAB = "RTC Timepoint"
CHUNK = 2000

#: Persons to read: a SQL selection of person ids (set-based), ids, or None for all.
Persons = Select[Any] | Iterable[int] | None


class StoreError(InstrumentError):
    """An assessment cannot be stored (unknown person, timepoint or concept)."""


class StoreOutcome(StrEnum):
    """What storing one assessment did.

    ``stored``: new; ``unchanged``: identical to the stored one; ``corrected``: a new
    version, the earlier one moved from OMOP to the version history;
    ``refused``: it differs from the stored one and no correction reason was given
    (nothing written).
    """

    STORED = "stored"
    UNCHANGED = "unchanged"
    CORRECTED = "corrected"
    REFUSED = "refused"


@dataclass(frozen=True)
class Assessment:
    """Where an assessment belongs: the person, the timepoint and the date offset.

    Attributes
    ----------
    person_id
        PERSON row of the patient (resolved by the caller from the pseudonym).
    timepoint
        Follow-up timepoint code (``baseline``, ``eot``, ``m3``, ...).
    date_offset_days
        The patient's date offset from the pseudonymisation step; added to every date.
    """

    person_id: int
    timepoint: str
    date_offset_days: int = 0

    def shift(self, day: date) -> date:
        """Return ``day`` moved by the date offset."""
        return day + timedelta(days=self.date_offset_days)

    def shift_datetime(self, moment: datetime | date) -> datetime:
        """Return a naive UTC datetime moved by the date offset."""
        if not isinstance(moment, datetime):
            moment = datetime.combine(moment, time(0, 0))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment + timedelta(days=self.date_offset_days)


def person_id_for_pseudonym(session: Session, pseudonym: str) -> int | None:
    """Return the PERSON id whose ``person_source_value`` is ``pseudonym``."""
    found = session.scalar(
        select(Person.person_id).where(Person.person_source_value == pseudonym)
    )
    return int(found) if found is not None else None


def field_id(session: Session, name: str) -> int:
    """Field concept id, cached on the session (one query per field and session)."""
    cache: dict[str, int] = session.info.setdefault("rtcohort_field_concepts", {})
    if name not in cache:
        cache[name] = field_concept_id(session, name)
    return cache[name]


def check_plausible_date(
    session: Session,
    where: Assessment,
    received: date,
    field: str,
    *,
    today: date | None = None,
) -> None:
    """Refuse an assessment date that cannot be true (checked on the received date).

    ``received`` is the date as sent, before the date offset: it may not be after
    today (UTC) plus one day (time zones ahead of UTC), before the person's year of
    birth, or after the recorded death (compared in the shifted frame, where DEATH
    dates are stored).

    Raises
    ------
    StoreError
        Naming ``field``, the date and the reason; or an unknown person.
    """
    person = session.get(Person, where.person_id)
    if person is None:
        raise StoreError(f"unknown person_id {where.person_id}")
    latest = (today or datetime.now(UTC).date()) + timedelta(days=1)
    if received > latest:
        raise StoreError(f"{field} {received.isoformat()} is in the future")
    if person.year_of_birth and received.year < person.year_of_birth:
        raise StoreError(
            f"{field} {received.isoformat()} is before the year of birth"
            f" ({person.year_of_birth})"
        )
    died = session.scalar(
        select(func.min(Death.death_date)).where(Death.person_id == where.person_id)
    )
    if died is not None and where.shift(received) > died:
        raise StoreError(f"{field} {received.isoformat()} is after the death")


def our_concept(vocabulary: str, code: str) -> int:
    """Return our concept id of ``code`` in ``vocabulary``; StoreError if unknown."""
    try:
        return our_concept_id(vocabulary, code)
    except UnknownConceptError:
        raise StoreError(f"no concept for {vocabulary} {code!r}") from None


def visit_row(where: Assessment, day: date) -> dict[str, Any]:
    """VISIT_OCCURRENCE of a person's timepoint (created with its first assessment)."""
    return {
        "person_id": where.person_id,
        "visit_concept_id": OUTPATIENT_VISIT,
        "visit_start_date": day,
        "visit_end_date": day,
        "visit_type_concept_id": CASE_REPORT_FORM,
        "visit_source_value": where.timepoint,
        "visit_source_concept_id": our_concept(TIMEPOINT_VOCAB, where.timepoint),
    }


def visit_for(session: Session, where: Assessment, day: date) -> int:
    """Return the VISIT_OCCURRENCE of the person's timepoint, created on first use."""
    if session.get(Person, where.person_id) is None:
        raise StoreError(f"unknown person_id {where.person_id}")
    found = session.scalar(
        select(VisitOccurrence.visit_occurrence_id).where(
            VisitOccurrence.person_id == where.person_id,
            VisitOccurrence.visit_source_value == where.timepoint,
        )
    )
    if found is not None:
        return int(found)
    visit = VisitOccurrence(**visit_row(where, day))
    session.add(visit)
    session.flush()
    return int(visit.visit_occurrence_id)


def frame(rows: Iterable[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Return ``rows`` as a DataFrame with ``columns`` (also when empty)."""
    import pandas as pd

    return pd.DataFrame(list(rows), columns=columns)


@cache
def timepoint_codes() -> dict[int, str]:
    """Return the timepoint code of each ``RTC Timepoint`` concept id."""
    return {
        concept_id: code
        for (vocabulary, code), concept_id in load_registry().items()
        if vocabulary == TIMEPOINT_VOCAB
    }


def timepoint_code(concept_id: int | None, source_value: str | None) -> str | None:
    """Timepoint code of a survey: its timing concept, else the source value.

    Rows stored before the timing concept was written hold the code alone.
    """
    return timepoint_codes().get(int(concept_id or 0)) or source_value


def where_persons(
    column: InstrumentedAttribute[int], persons: Persons
) -> list[list[ColumnElement[bool]]]:
    """Conditions selecting ``persons``: one list per query to run (chunks of ids)."""
    if persons is None:
        return [[]]
    if isinstance(persons, Select):
        return [[column.in_(persons)]]
    ids = sorted(set(persons))
    return [
        [column.in_(ids[start : start + CHUNK])] for start in range(0, len(ids), CHUNK)
    ]
