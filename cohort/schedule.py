"""Follow-up schedule: timepoints relative to RT start or end, with windows.

A timepoint's target date is ``anchor + offset_days``; its window runs from
``target - window_before_days`` to ``target + window_after_days``. On a given day an
assessment that is not done is ``upcoming`` (window not open), ``due`` (window open,
target not passed), ``overdue`` (target passed, window open) or ``missed`` (window
closed). Toxicity is done by a stored CTCAE grading in the window
(:func:`instruments.store.read_toxicity_dates`); a PROM by a stored questionnaire whose
timepoint is the timepoint or that ended in the window
(:func:`instruments.store.read_survey_timings`).

RT start and end come from the person's first RT course
(:func:`etl.store.course.read_first_courses`), deaths from
:func:`cohort.vital.death_dates`.
All dates are in each patient's pseudonymised time frame: ``today`` is moved by the
patient's date offset (from the contact register) before comparing.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort.consent import ConsentState
from cohort.vital import death_dates
from etl.store.course import read_first_courses
from instruments.store import read_survey_timings, read_toxicity_dates
from omop.cdm import Person
from omop.cohort_tables import Enrolment, FollowupProtocol, FollowupTimepoint
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import CASE_REPORT_FORM, RT_COURSE_EPISODE

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

RT_COURSE_CONCEPT_ID = RT_COURSE_EPISODE
TOXICITY_TYPE_CONCEPT_ID = CASE_REPORT_FORM


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


_EPOCH = datetime.date(1970, 1, 1).toordinal()
# status codes of the vectorised classification, in the order of _STATUSES
_UPCOMING, _DUE, _OVERDUE, _MISSED, _DONE = range(5)
_STATUSES = (Status.UPCOMING, Status.DUE, Status.OVERDUE, Status.MISSED, Status.DONE)

Days = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


def _ordinals(days: Sequence[datetime.date]) -> Days:
    """Day numbers (``date.toordinal()``) of dates or datetimes (their date part)."""
    return np.fromiter((d.toordinal() for d in days), np.int64, len(days))


def _dates(ordinals: Days) -> list[datetime.date]:
    return (ordinals - _EPOCH).astype("datetime64[D]").tolist()  # type: ignore[no-any-return]


def _classify_days(lo: Days, target: Days, hi: Days, local: Days, done: Mask) -> Days:
    """Status codes of assessments on day numbers (arguments broadcast together)."""
    return np.select(
        [done, local < lo, local <= target, local <= hi],
        [_DONE, _UPCOMING, _DUE, _OVERDUE],
        default=_MISSED,
    ).astype(np.int64)


def _index(keys: Days, values: Days) -> tuple[Days, Mask]:
    """Position of each value in the sorted unique ``keys`` and whether it is there."""
    at = np.searchsorted(keys, values)
    found = at < keys.size
    found[found] = keys[at[found]] == values[found]
    return np.minimum(at, max(keys.size - 1, 0)), found


def _any_in_window(
    event_row: Days, event_day: Days, rows: Days, lo: Days, hi: Days
) -> Mask:
    """Whether row ``rows[i]`` has an event on a day in ``[lo[i, j], hi[i, j]]``."""
    if event_row.size == 0:
        return np.zeros(lo.shape, dtype=np.bool_)
    base = min(int(event_day.min()), int(lo.min()))
    span = max(int(event_day.max()), int(hi.max())) - base + 1
    keys = np.sort(event_row * span + (event_day - base))
    first = rows[:, None] * span
    left = np.searchsorted(keys, first + (lo - base), side="left")
    right = np.searchsorted(keys, first + (hi - base), side="right")
    return right > left


@dataclass(frozen=True)
class _Events:
    """Dated events and PROM timings, by row of the unique person ids."""

    row: Days
    day: Days
    timing_row: Days
    timing: Days

    @classmethod
    def build(
        cls,
        persons: Days,
        rows: Sequence[tuple[object, datetime.date | None, int]],
    ) -> _Events:
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty)
        pid = np.fromiter((int(r[0]) for r in rows), np.int64, len(rows))  # type: ignore[call-overload]
        timing = np.fromiter((r[2] for r in rows), np.int64, len(rows))
        row, found = _index(persons, pid)
        dated = np.fromiter((r[1] is not None for r in rows), np.bool_, len(rows))
        keep = found & dated
        days = _ordinals([r[1] for r in rows if r[1] is not None])
        return cls(row[keep], days[found[dated]], row[found], timing[found])


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
    opens after a recorded death are left out. The classification runs on arrays of
    day numbers (persons x timepoints), as :func:`classify` does for one assessment.
    Items come per person (in enrolment query order), timepoint and kind.
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
    enrolled = select(Enrolment.person_id).where(*scope)

    # persons: one row per enrolment row; u = row in the array of unique person ids
    n = len(people)
    pid = np.fromiter((int(r[0]) for r in people), np.int64, n)
    persons, u = np.unique(pid, return_inverse=True)
    u = u.reshape(-1)
    scope_data = np.fromiter((bool(r[3]) for r in people), np.bool_, n)
    scope_proms = np.fromiter((bool(r[4]) for r in people), np.bool_, n)

    rt = read_first_courses(session, enrolled)
    rt_row, rt_found = _index(persons, np.array([r[0] for r in rt], dtype=np.int64))
    rt_row = rt_row[rt_found]
    start = np.zeros(persons.size, dtype=np.int64)
    end = np.zeros(persons.size, dtype=np.int64)
    has_rt = np.zeros(persons.size, dtype=np.bool_)
    has_end = np.zeros(persons.size, dtype=np.bool_)
    found_rt = [r for r, f in zip(rt, rt_found.tolist(), strict=True) if f]
    start[rt_row] = _ordinals([r[1] for r in found_rt])
    has_rt[rt_row] = True
    ended = np.array([r[2] is not None for r in found_rt], dtype=np.bool_)
    has_end[rt_row[ended]] = True
    end[rt_row[ended]] = _ordinals([r[2] for r in found_rt if r[2] is not None])
    end = np.where(has_end, end, start)  # any valid day; masked by has_end

    death_rows = death_dates(session, enrolled)
    d_row, d_found = _index(
        persons, np.array([int(r[0]) for r in death_rows], dtype=np.int64)
    )
    has_death = np.zeros(persons.size, dtype=np.bool_)
    death = np.zeros(persons.size, dtype=np.int64)
    has_death[d_row[d_found]] = True
    death[d_row[d_found]] = _ordinals([r[1] for r in death_rows])[d_found]

    local = np.full(persons.size, today.toordinal(), dtype=np.int64)
    if offsets:
        o_row, o_found = _index(persons, np.fromiter(offsets.keys(), np.int64))
        local[o_row[o_found]] += np.fromiter(offsets.values(), np.int64)[o_found]

    tox = _Events.build(
        persons,
        [(p, day, -1) for p, day in read_toxicity_dates(session, enrolled)]
        if Kind.TOXICITY in kinds
        else [],
    )
    proms = _Events.build(
        persons,
        [
            (p, ended, _timing_id(timepoint))
            for p, timepoint, ended in read_survey_timings(session, enrolled)
        ]
        if Kind.PROM in kinds
        else [],
    )

    wanted = frozenset(Status) if statuses is None else frozenset(statuses)
    wanted_codes = np.array(
        [c for c, s in enumerate(_STATUSES) if s in wanted], dtype=np.int64
    )
    with_rt = has_rt[u]
    codes = [str(r[2]) for r in people]
    protocols: dict[str, list[TimepointDef]] = {}
    for i in np.flatnonzero(with_rt).tolist():  # first appearance order
        if codes[i] not in protocols:
            protocols[codes[i]] = protocol_timepoints(session, people[i][2])
    code_of = np.array(codes, dtype=object)

    pid_list = pid.tolist()
    pseudonyms = [str(r[1]) for r in people]
    parts: list[tuple[Days, list[ScheduleItem]]] = []
    for code, tps in protocols.items():
        if not tps:
            continue
        rows = np.flatnonzero(with_rt & (code_of == code))
        ur = u[rows]
        at_start = np.array([tp.anchor is Anchor.RT_START for tp in tps])
        anchor = np.where(at_start, start[ur, None], end[ur, None])
        target = anchor + np.array([tp.offset_days for tp in tps], dtype=np.int64)
        lo = target - np.array([tp.window_before_days for tp in tps], dtype=np.int64)
        hi = target + np.array([tp.window_after_days for tp in tps], dtype=np.int64)
        valid = (at_start | has_end[ur, None]) & ~(
            has_death[ur, None] & (lo > death[ur, None])
        )
        status_k, keep_k = [], []
        for kind in kinds:
            if kind is Kind.TOXICITY:
                applies = np.array([tp.toxicity for tp in tps]) & scope_data[rows, None]
                done = _any_in_window(tox.row, tox.day, ur, lo, hi)
            else:
                applies = np.array([tp.prom for tp in tps]) & scope_proms[rows, None]
                done = _any_in_window(proms.row, proms.day, ur, lo, hi)
                timing = np.array([_timing_id(tp.code) for tp in tps], dtype=np.int64)
                hit = np.zeros((persons.size, len(tps)), dtype=np.bool_)
                ev, tp_i = np.nonzero(proms.timing[:, None] == timing[None, :])
                hit[proms.timing_row[ev], tp_i] = True
                done |= hit[ur]
            status = _classify_days(lo, target, hi, local[ur, None], done)
            status_k.append(status)
            keep_k.append(valid & applies & np.isin(status, wanted_codes))
        if not status_k:
            continue
        # (person, timepoint, kind) in C order: per person, timepoint, then kind
        keep = np.stack(keep_k, axis=-1)
        r_i, t_i, k_i = np.nonzero(keep)
        st = np.stack(status_k, axis=-1)[keep]
        tgt, lo_k, hi_k = target[r_i, t_i], lo[r_i, t_i], hi[r_i, t_i]
        row = rows[r_i]
        tp_codes = [tp.code for tp in tps]
        kind_list = list(kinds)
        items = [
            ScheduleItem(
                pid_list[i],
                pseudonyms[i],
                tp_codes[t],
                kind_list[k],
                target_day,
                lo_day,
                hi_day,
                _STATUSES[s],
            )
            for i, t, k, target_day, lo_day, hi_day, s in zip(
                row.tolist(),
                t_i.tolist(),
                k_i.tolist(),
                _dates(tgt),
                _dates(lo_k),
                _dates(hi_k),
                st.tolist(),
                strict=True,
            )
        ]
        parts.append((row, items))
    if len(parts) == 1:
        return parts[0][1]
    flat = [item for _, items in parts for item in items]
    if not flat:
        return []
    order = np.argsort(np.concatenate([row for row, _ in parts]), kind="stable")
    return [flat[i] for i in order.tolist()]


_day = datetime.date.fromordinal


@cache
def _timing_id(code: str | None) -> int:
    """Concept id of a timepoint code; -1 (matches no timepoint) when unknown."""
    if code is None:
        return -1
    try:
        return our_concept_id("RTC Timepoint", code)
    except LookupError:
        return -1
