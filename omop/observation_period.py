"""OBSERVATION_PERIOD: one period per person that holds every event of the person.

The rule (ARCHITECTURE.md section 3, ``docs/omop.md``): a consented person's period
runs from consent (or the first event, if earlier) to the latest of last contact, last
assessment, last RT fraction (the course's ``episode_end_date``) and death. Persons
without consent to data use (eligible, approached, declined) have a period from first
contact to the decision (or to today while undecided) and no clinical rows.

Every writer of an event calls :func:`extend_observation_period` in its transaction
(the owner of each row convention: ``etl.store`` for courses, images and metrics,
``instruments.store`` for PROM and toxicity, ``cohort.consent`` and ``cohort.vital``).
:func:`recompute_observation_periods` (run by ``rtcohort db upgrade``) derives the
periods of existing data from the events, so data written under the older rule (a
one-day period opened at consent) is brought in line.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from omop.cdm import (
    ConditionOccurrence,
    Death,
    Episode,
    ImageOccurrence,
    Measurement,
    Observation,
    ObservationPeriod,
    Person,
    ProcedureOccurrence,
    SurveyConduct,
    VisitOccurrence,
)
from omop.cohort_tables import ConsentEvent, Enrolment

__all__ = [
    "PERIOD_TYPE_CONCEPT_ID",
    "PeriodReport",
    "extend_observation_period",
    "recompute_observation_periods",
    "restart_observation_period",
]

#: Registry (32879): the periods are kept by the cohort registry.
PERIOD_TYPE_CONCEPT_ID = 32879
_CONSENTED = ("consented", "withdrawn")
_PENDING = ("eligible", "approached")


def _periods(session: Session, person_id: int) -> list[ObservationPeriod]:
    return list(
        session.scalars(
            select(ObservationPeriod)
            .where(ObservationPeriod.person_id == person_id)
            .order_by(ObservationPeriod.observation_period_id)
        )
    )


def extend_observation_period(
    session: Session,
    person_id: int,
    start: datetime.date,
    end: datetime.date | None = None,
) -> ObservationPeriod:
    """Make the person's one OBSERVATION_PERIOD cover ``start`` to ``end``.

    Idempotent and only ever widens: the period becomes the union of what it held
    and ``[start, end]``. Creates the period when the person has none; merges extra
    periods (written by older versions) into one.

    Parameters
    ----------
    session
        Open session; the caller owns the transaction (never commits).
    person_id
        The PERSON.
    start, end
        First and last day of the event (``end`` defaults to ``start``).

    Returns
    -------
    ObservationPeriod
        The person's period (flushed).

    Examples
    --------
    >>> extend_observation_period(session, 1, date(2024, 3, 1))  # doctest: +SKIP
    """
    last = max(start, end) if end is not None else start
    periods = _periods(session, person_id)
    if not periods:
        period = ObservationPeriod(
            person_id=person_id,
            observation_period_start_date=start,
            observation_period_end_date=last,
            period_type_concept_id=PERIOD_TYPE_CONCEPT_ID,
        )
        session.add(period)
        session.flush()
        return period
    period, *extra = periods
    first_day = min([start, *(p.observation_period_start_date for p in periods)])
    last_day = max([last, *(p.observation_period_end_date for p in periods)])
    period.observation_period_start_date = first_day
    period.observation_period_end_date = last_day
    for other in extra:
        session.delete(other)
    session.flush()
    return period


def restart_observation_period(
    session: Session, person_id: int, day: datetime.date
) -> ObservationPeriod:
    """Start the person's period anew on ``day`` (consent to data use).

    The contact before consent (eligible, approached) is not observation of a
    consented person: the period becomes ``[day, day]`` widened by the person's
    events already stored (normally none), as :func:`recompute_observation_periods`
    would derive it.
    """
    for period in _periods(session, person_id):
        session.delete(period)
    session.flush()
    first, last = _event_span(session, [person_id]).get(person_id, (day, day))
    return extend_observation_period(session, person_id, min(first, day), last)


_EVENT_DATES: tuple[
    tuple[InstrumentedAttribute[int], InstrumentedAttribute[Any]], ...
] = (
    (ConditionOccurrence.person_id, ConditionOccurrence.condition_start_date),
    (ConditionOccurrence.person_id, ConditionOccurrence.condition_end_date),
    (ProcedureOccurrence.person_id, ProcedureOccurrence.procedure_date),
    (ProcedureOccurrence.person_id, ProcedureOccurrence.procedure_end_date),
    (Measurement.person_id, Measurement.measurement_date),
    (Observation.person_id, Observation.observation_date),
    (Episode.person_id, Episode.episode_start_date),
    (Episode.person_id, Episode.episode_end_date),
    (ImageOccurrence.person_id, ImageOccurrence.image_occurrence_date),
    (SurveyConduct.person_id, SurveyConduct.survey_start_date),
    (VisitOccurrence.person_id, VisitOccurrence.visit_start_date),
    (VisitOccurrence.person_id, VisitOccurrence.visit_end_date),
    (Death.person_id, Death.death_date),
)


def _merge(
    into: dict[int, tuple[datetime.date, datetime.date]],
    rows: Iterable[tuple[int, datetime.date | None, datetime.date | None]],
) -> None:
    for person, low, high in rows:
        if low is None or high is None:
            continue
        low_d, high_d = _day(low), _day(high)
        old = into.get(int(person))
        into[int(person)] = (
            (min(old[0], low_d), max(old[1], high_d)) if old else (low_d, high_d)
        )


def _day(value: datetime.date) -> datetime.date:
    return value.date() if isinstance(value, datetime.datetime) else value


def _event_span(
    session: Session, person_ids: list[int] | None = None
) -> dict[int, tuple[datetime.date, datetime.date]]:
    """Return ``person_id -> (first, last)`` over the clinical events."""
    span: dict[int, tuple[datetime.date, datetime.date]] = {}
    for person_col, date_col in _EVENT_DATES:
        where: list[ColumnElement[bool]] = [date_col.is_not(None)]
        if person_ids is not None:
            where.append(person_col.in_(person_ids))
        rows = session.execute(
            select(person_col, func.min(date_col), func.max(date_col))
            .where(*where)
            .group_by(person_col)
        ).all()
        _merge(span, [(int(p), lo, hi) for p, lo, hi in rows])
    return span


@dataclass(frozen=True)
class PeriodReport:
    """What :func:`recompute_observation_periods` did.

    Attributes
    ----------
    persons
        Persons whose period was derived.
    changed
        Periods created, changed or merged.
    """

    persons: int
    changed: int


def _consent_spans(
    session: Session, today: datetime.date
) -> dict[int, tuple[datetime.date, datetime.date]]:
    """Return the span of the consent history and contacts of every enrolment."""
    last_event = dict(
        session.execute(
            select(ConsentEvent.person_id, func.max(ConsentEvent.event_date)).group_by(
                ConsentEvent.person_id
            )
        ).all()
    )
    spans: dict[int, tuple[datetime.date, datetime.date]] = {}
    for person, state, first, consented, contact in session.execute(
        select(
            Enrolment.person_id,
            Enrolment.state,
            Enrolment.first_record_date,
            Enrolment.consented_date,
            Enrolment.last_contact_date,
        )
    ):
        start = consented if state in _CONSENTED and consented else first
        end = max(d for d in (start, last_event.get(person), contact) if d is not None)
        if state in _PENDING:
            end = max(end, today)
        spans[int(person)] = (start, end)
    return spans


def recompute_observation_periods(
    session: Session, today: datetime.date | None = None
) -> PeriodReport:
    """Derive every person's OBSERVATION_PERIOD from the stored events (idempotent).

    The period of a person is the span of the consent history (from consent for
    consented persons, from the first contact otherwise; to the decision, the last
    contact, or ``today`` while undecided) widened by every clinical event, the
    course end dates and the death. Persons with neither keep what they have.

    Parameters
    ----------
    session
        Open session; the caller owns the transaction.
    today
        The end of the period of undecided persons (default: today, UTC).
    """
    today = today or datetime.datetime.now(datetime.UTC).date()
    spans = _consent_spans(session, today)
    _merge(spans, [(p, lo, hi) for p, (lo, hi) in _event_span(session).items()])
    existing: dict[int, list[ObservationPeriod]] = {}
    for period in session.scalars(
        select(ObservationPeriod).order_by(ObservationPeriod.observation_period_id)
    ):
        existing.setdefault(int(period.person_id), []).append(period)
    known = set(session.scalars(select(Person.person_id)))
    changed = 0
    for person, (start, end) in spans.items():
        if person not in known:
            continue
        periods = existing.get(person, [])
        if len(periods) == 1 and (
            periods[0].observation_period_start_date,
            periods[0].observation_period_end_date,
        ) == (start, end):
            continue
        changed += 1
        if periods:
            for extra in periods[1:]:
                session.delete(extra)
            periods[0].observation_period_start_date = start
            periods[0].observation_period_end_date = end
        else:
            session.add(
                ObservationPeriod(
                    person_id=person,
                    observation_period_start_date=start,
                    observation_period_end_date=end,
                    period_type_concept_id=PERIOD_TYPE_CONCEPT_ID,
                )
            )
    session.flush()
    return PeriodReport(persons=len(spans), changed=changed)
