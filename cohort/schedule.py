"""Follow-up schedule: timepoints relative to RT start or end, with windows.

A timepoint's target date is ``anchor + offset_days``; its window runs from
``target - window_before_days`` to ``target + window_after_days``. On a given day an
assessment that is not done is ``upcoming`` (window not open), ``due`` (window open,
target not passed), ``overdue`` (target passed, window open) or ``missed`` (window
closed). Toxicity is done by a case-report-form OBSERVATION (type 32809) in the window;
a PROM by a SURVEY_CONDUCT whose timing is the timepoint or that ended in the window.

RT start and end come from the person's first RT course EPISODE (concept 32940).
All dates are in each patient's pseudonymised time frame: ``today`` is moved by the
patient's date offset (from the contact register) before comparing.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from cohort.consent import ConsentState
from omop.cdm import Death, Episode, Observation, Person, SurveyConduct
from omop.cohort_tables import Enrolment, FollowupProtocol, FollowupTimepoint
from omop.vocab.registry import our_concept_id

__all__ = [
    "DEFAULT_TIMEPOINTS",
    "RT_COURSE_CONCEPT_ID",
    "TOXICITY_TYPE_CONCEPT_ID",
    "Anchor",
    "Kind",
    "ScheduleItem",
    "Status",
    "TimepointDef",
    "classify",
    "ensure_protocol",
    "protocol_timepoints",
    "schedule",
]

RT_COURSE_CONCEPT_ID = 32940
TOXICITY_TYPE_CONCEPT_ID = 32809


class Kind(StrEnum):
    """What is assessed at a timepoint."""

    TOXICITY = "toxicity"
    PROM = "prom"


class Anchor(StrEnum):
    """What a timepoint is relative to."""

    RT_START = "rt_start"
    RT_END = "rt_end"


class Status(StrEnum):
    """State of one assessment on a given day."""

    UPCOMING = "upcoming"
    DUE = "due"
    OVERDUE = "overdue"
    MISSED = "missed"
    DONE = "done"


@dataclass(frozen=True)
class TimepointDef:
    """One timepoint of a protocol."""

    code: str
    anchor: Anchor
    offset_days: int
    window_before_days: int
    window_after_days: int
    toxicity: bool = True
    prom: bool = True


DEFAULT_TIMEPOINTS: tuple[TimepointDef, ...] = (
    TimepointDef("baseline", Anchor.RT_START, 0, 30, 0),
    TimepointDef("eot", Anchor.RT_END, 0, 7, 14),
    TimepointDef("m3", Anchor.RT_END, 91, 30, 30),
    TimepointDef("m6", Anchor.RT_END, 182, 30, 30),
    TimepointDef("m12", Anchor.RT_END, 365, 60, 60),
    TimepointDef("m24", Anchor.RT_END, 730, 60, 60),
    TimepointDef("m36", Anchor.RT_END, 1095, 90, 90),
    TimepointDef("m60", Anchor.RT_END, 1826, 90, 90),
)


def ensure_protocol(
    session: Session,
    code: str = "default",
    timepoints: Sequence[TimepointDef] = DEFAULT_TIMEPOINTS,
    name: str = "Default radiotherapy follow-up",
) -> FollowupProtocol:
    """Return the protocol ``code``, creating it with ``timepoints`` when absent."""
    protocol = session.scalar(
        select(FollowupProtocol).where(FollowupProtocol.code == code)
    )
    if protocol is not None:
        return protocol
    protocol = FollowupProtocol(code=code, name=name)
    session.add(protocol)
    session.flush()
    for tp in timepoints:
        session.add(
            FollowupTimepoint(
                protocol_id=protocol.protocol_id,
                code=tp.code,
                anchor=tp.anchor.value,
                offset_days=tp.offset_days,
                window_before_days=tp.window_before_days,
                window_after_days=tp.window_after_days,
                toxicity=tp.toxicity,
                prom=tp.prom,
            )
        )
    session.flush()
    return protocol


def protocol_timepoints(session: Session, code: str) -> list[TimepointDef]:
    """Return the timepoints of a protocol (the default one is created on demand)."""
    protocol = (
        ensure_protocol(session)
        if code == "default"
        else session.scalar(
            select(FollowupProtocol).where(FollowupProtocol.code == code)
        )
    )
    if protocol is None:
        return []
    rows = session.scalars(
        select(FollowupTimepoint)
        .where(FollowupTimepoint.protocol_id == protocol.protocol_id)
        .order_by(FollowupTimepoint.timepoint_id)
    )
    return [
        TimepointDef(
            r.code,
            Anchor(r.anchor),
            r.offset_days,
            r.window_before_days,
            r.window_after_days,
            r.toxicity,
            r.prom,
        )
        for r in rows
    ]


def classify(
    target: datetime.date,
    window_before_days: int,
    window_after_days: int,
    today: datetime.date,
    *,
    done: bool,
) -> Status:
    """Return the status of one assessment on ``today``.

    Examples
    --------
    >>> d = datetime.date(2025, 3, 1)
    >>> classify(d, 7, 7, datetime.date(2025, 3, 2), done=False).value
    'overdue'
    """
    if done:
        return Status.DONE
    if today < target - datetime.timedelta(days=window_before_days):
        return Status.UPCOMING
    if today <= target:
        return Status.DUE
    if today <= target + datetime.timedelta(days=window_after_days):
        return Status.OVERDUE
    return Status.MISSED


@dataclass(frozen=True)
class ScheduleItem:
    """One assessment of one person at one timepoint."""

    person_id: int
    pseudonym: str
    timepoint: str
    kind: Kind
    target_date: datetime.date
    window_start: datetime.date
    window_end: datetime.date
    status: Status


def _rt_dates(
    session: Session, scope: list[ColumnElement[bool]]
) -> dict[int, tuple[datetime.date, datetime.date | None]]:
    first = (
        select(
            Episode.person_id,
            Episode.episode_start_date,
            Episode.episode_end_date,
            func.row_number()
            .over(
                partition_by=Episode.person_id,
                order_by=(Episode.episode_start_date, Episode.episode_id),
            )
            .label("n"),
        )
        .join(Enrolment, Enrolment.person_id == Episode.person_id)
        .where(Episode.episode_concept_id == RT_COURSE_CONCEPT_ID, *scope)
        .subquery()
    )
    rows = session.execute(
        select(
            first.c.person_id, first.c.episode_start_date, first.c.episode_end_date
        ).where(first.c.n == 1)
    ).all()
    return {int(p): (s, e) for p, s, e in rows}


def _dates_by_person(session: Session, query: object) -> dict[int, list[datetime.date]]:
    out: dict[int, list[datetime.date]] = defaultdict(list)
    for pid, day in session.execute(query).all():  # type: ignore[call-overload]
        if day is not None:
            out[int(pid)].append(
                day.date() if isinstance(day, datetime.datetime) else day
            )
    return out


def schedule(
    session: Session,
    care_site_id: int,
    today: datetime.date,
    *,
    kinds: Sequence[Kind] = (Kind.TOXICITY, Kind.PROM),
    offsets: Mapping[int, int] | None = None,
    person_ids: Sequence[int] | None = None,
    statuses: Iterable[Status] | None = None,
) -> list[ScheduleItem]:
    """Return every assessment of the centre's consented patients with its status.

    Parameters
    ----------
    care_site_id
        The centre.
    today
        The real current date.
    kinds
        Toxicity, PROM or both. PROMs only for persons whose consent covers PROMs.
    offsets
        ``{person_id: date offset in days}`` (the contact register); persons absent
        have offset 0 (their dates are real dates).
    person_ids
        Restrict to these persons (the permission layer's filter).
    statuses
        Return only assessments in these states (default: all).

    Notes
    -----
    Persons without an RT course have no schedule yet. Timepoints whose window
    opens after a recorded death are left out.
    """
    query = (
        select(
            Enrolment.person_id,
            Person.person_source_value,
            Enrolment.protocol_code,
            Enrolment.scope_data,
            Enrolment.scope_proms,
        )
        .join(Person, Person.person_id == Enrolment.person_id)
        .where(
            Enrolment.care_site_id == care_site_id,
            Enrolment.state == ConsentState.CONSENTED.value,
        )
    )
    if person_ids is not None:
        query = query.where(Enrolment.person_id.in_(list(person_ids)))
    people = session.execute(query).all()
    if not people:
        return []
    scope = [
        Enrolment.care_site_id == care_site_id,
        Enrolment.state == ConsentState.CONSENTED.value,
    ]
    if person_ids is not None:
        scope.append(Enrolment.person_id.in_(list(person_ids)))
    rt = _rt_dates(session, scope)
    deaths = dict(
        session.execute(
            select(Death.person_id, Death.death_date)
            .join(Enrolment, Enrolment.person_id == Death.person_id)
            .where(*scope)
        ).all()
    )
    tox_done = (
        _dates_by_person(
            session,
            select(Observation.person_id, Observation.observation_date)
            .join(Enrolment, Enrolment.person_id == Observation.person_id)
            .where(
                *scope,
                Observation.observation_type_concept_id == TOXICITY_TYPE_CONCEPT_ID,
            ),
        )
        if Kind.TOXICITY in kinds
        else {}
    )
    prom_rows: dict[int, list[tuple[int, datetime.date | None]]] = defaultdict(list)
    if Kind.PROM in kinds:
        for pid, timing, end_dt in session.execute(
            select(
                SurveyConduct.person_id,
                SurveyConduct.timing_concept_id,
                SurveyConduct.survey_end_datetime,
            )
            .join(Enrolment, Enrolment.person_id == SurveyConduct.person_id)
            .where(*scope)
        ).all():
            prom_rows[int(pid)].append((int(timing), end_dt.date() if end_dt else None))
    protocols: dict[str, list[TimepointDef]] = {}
    offsets = offsets or {}
    wanted = frozenset(Status) if statuses is None else frozenset(statuses)
    today_n = today.toordinal()
    tox_n = {p: [d.toordinal() for d in ds] for p, ds in tox_done.items()}
    prom_n = {
        p: [(t, d.toordinal() if d else None) for t, d in rows]
        for p, rows in prom_rows.items()
    }
    items: list[ScheduleItem] = []
    for raw_pid, pseudonym, protocol_code, scope_data, scope_proms in people:
        pid = int(raw_pid)
        if pid not in rt:
            continue
        if protocol_code not in protocols:
            protocols[protocol_code] = protocol_timepoints(session, protocol_code)
        start, end = rt[pid]
        local = today_n + offsets.get(pid, 0)
        death = deaths.get(pid)
        death_n = death.toordinal() if death is not None else None
        for tp in protocols[protocol_code]:
            anchor = start if tp.anchor is Anchor.RT_START else end
            if anchor is None:
                continue
            target = anchor.toordinal() + tp.offset_days
            lo, hi = target - tp.window_before_days, target + tp.window_after_days
            if death_n is not None and lo > death_n:
                continue
            for kind in kinds:
                if kind is Kind.TOXICITY:
                    if not (tp.toxicity and scope_data):
                        continue
                    done = any(lo <= d <= hi for d in tox_n.get(pid, ()))
                else:
                    if not (tp.prom and scope_proms):
                        continue
                    timing = _timing_id(tp.code)
                    done = any(
                        t == timing or (d is not None and lo <= d <= hi)
                        for t, d in prom_n.get(pid, ())
                    )
                # classify() on day numbers
                if done:
                    status = Status.DONE
                elif local < lo:
                    status = Status.UPCOMING
                elif local <= target:
                    status = Status.DUE
                elif local <= hi:
                    status = Status.OVERDUE
                else:
                    status = Status.MISSED
                if status not in wanted:
                    continue
                items.append(
                    ScheduleItem(
                        pid,
                        str(pseudonym),
                        tp.code,
                        kind,
                        _day(target),
                        _day(lo),
                        _day(hi),
                        status,
                    )
                )
    return items


_day = datetime.date.fromordinal


@cache
def _timing_id(code: str) -> int:
    try:
        return our_concept_id("RTC Timepoint", code)
    except LookupError:
        return -1
