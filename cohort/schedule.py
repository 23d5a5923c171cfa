"""Follow-up schedule: timepoints relative to RT start or end, with windows.

The protocols (timepoint definitions) are in :mod:`cohort.protocol`, the per-person
inputs in :mod:`cohort.schedule_inputs`, the vectorised day arithmetic in
:mod:`cohort.schedule_days`.

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
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort.protocol import (
    DEFAULT_TIMEPOINTS,
    Anchor,
    Kind,
    TimepointDef,
    ensure_protocol,
    protocol_timepoints,
)
from cohort.schedule_days import Days, Events, Mask, any_in_window, classify_days, dates
from cohort.schedule_inputs import (
    Enrolments,
    PersonDays,
    enrolment_scope,
    person_days,
)
from instruments.store import read_survey_timings, read_toxicity_dates
from omop.cdm import Person
from omop.cohort_tables import Enrolment
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

if TYPE_CHECKING:
    from cohort.schedule_inputs import EnrolmentRow

RT_COURSE_CONCEPT_ID = RT_COURSE_EPISODE
TOXICITY_TYPE_CONCEPT_ID = CASE_REPORT_FORM


class Status(StrEnum):
    """State of one assessment on a given day."""

    UPCOMING = "upcoming"
    DUE = "due"
    OVERDUE = "overdue"
    MISSED = "missed"
    DONE = "done"


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


# the Status of each code of cohort.schedule_days
_STATUSES = (Status.UPCOMING, Status.DUE, Status.OVERDUE, Status.MISSED, Status.DONE)


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
    scope = enrolment_scope(care_site_id, person_ids)
    people = session.execute(
        select(
            Enrolment.person_id,
            Person.person_source_value,
            Enrolment.protocol_code,
            Enrolment.scope_data,
            Enrolment.scope_proms,
        )
        .join(Person, Person.person_id == Enrolment.person_id)
        .where(*scope)
    ).all()
    if not people:
        return []
    enrolled = select(Enrolment.person_id).where(*scope)
    rows = Enrolments.of(people)
    persons = person_days(session, rows.persons, enrolled, today, offsets)
    tox = Events.build(
        rows.persons,
        [(p, day, -1) for p, day in read_toxicity_dates(session, enrolled)]
        if Kind.TOXICITY in kinds
        else [],
    )
    proms = Events.build(
        rows.persons,
        [
            (p, ended, _timing_id(timepoint))
            for p, timepoint, ended in read_survey_timings(session, enrolled)
        ]
        if Kind.PROM in kinds
        else [],
    )
    wanted = frozenset(Status) if statuses is None else frozenset(statuses)
    grid = _Grid(
        rows,
        persons,
        {Kind.TOXICITY: tox, Kind.PROM: proms},
        tuple(kinds),
        np.array([c for c, s in enumerate(_STATUSES) if s in wanted], dtype=np.int64),
    )
    with_rt = persons.has_rt[rows.u]
    parts = [
        grid.items(np.flatnonzero(with_rt & (rows.code_of == code)), tps)
        for code, tps in _protocols(session, people, with_rt).items()
        if tps
    ]
    return _in_enrolment_order([part for part in parts if part is not None])


def _protocols(
    session: Session, people: Sequence[EnrolmentRow], with_rt: Mask
) -> dict[str, list[TimepointDef]]:
    """Protocol code -> timepoints, in first appearance order of persons with RT."""
    protocols: dict[str, list[TimepointDef]] = {}
    for i in np.flatnonzero(with_rt).tolist():
        code = str(people[i][2])
        if code not in protocols:
            protocols[code] = protocol_timepoints(session, people[i][2])
    return protocols


@dataclass(frozen=True)
class _Grid:
    """Classifies enrolment rows x timepoints x kinds of one protocol at a time."""

    rows: Enrolments
    persons: PersonDays
    events: Mapping[Kind, Events]
    kinds: tuple[Kind, ...]
    wanted_codes: Days

    def items(
        self, rows: Days, tps: Sequence[TimepointDef]
    ) -> tuple[Days, list[ScheduleItem]] | None:
        """Return the wanted items of enrolment ``rows`` under timepoints ``tps``."""
        ps, ur = self.persons, self.rows.u[rows]
        at_start = np.array([tp.anchor is Anchor.RT_START for tp in tps])
        anchor = np.where(at_start, ps.start[ur, None], ps.end[ur, None])
        target = anchor + np.array([tp.offset_days for tp in tps], dtype=np.int64)
        lo = target - np.array([tp.window_before_days for tp in tps], dtype=np.int64)
        hi = target + np.array([tp.window_after_days for tp in tps], dtype=np.int64)
        valid = (at_start | ps.has_end[ur, None]) & ~(
            ps.has_death[ur, None] & (lo > ps.death[ur, None])
        )
        status_k, keep_k = [], []
        for kind in self.kinds:
            applies, done = self._applies_done(kind, rows, tps, lo, hi)
            status = classify_days(lo, target, hi, ps.local[ur, None], done)
            status_k.append(status)
            keep_k.append(valid & applies & np.isin(status, self.wanted_codes))
        if not status_k:
            return None
        # (person, timepoint, kind) in C order: per person, timepoint, then kind
        keep = np.stack(keep_k, axis=-1)
        r_i, t_i, k_i = np.nonzero(keep)
        st = np.stack(status_k, axis=-1)[keep]
        row = rows[r_i]
        tp_codes = [tp.code for tp in tps]
        pid, pseudonyms = self.rows.pid, self.rows.pseudonyms
        items = [
            ScheduleItem(
                pid[i],
                pseudonyms[i],
                tp_codes[t],
                self.kinds[k],
                target_day,
                lo_day,
                hi_day,
                _STATUSES[s],
            )
            for i, t, k, target_day, lo_day, hi_day, s in zip(
                row.tolist(),
                t_i.tolist(),
                k_i.tolist(),
                dates(target[r_i, t_i]),
                dates(lo[r_i, t_i]),
                dates(hi[r_i, t_i]),
                st.tolist(),
                strict=True,
            )
        ]
        return row, items

    def _applies_done(
        self, kind: Kind, rows: Days, tps: Sequence[TimepointDef], lo: Days, hi: Days
    ) -> tuple[Mask, Mask]:
        """Whether each assessment of ``kind`` applies and whether it is done."""
        toxicity = kind is Kind.TOXICITY
        ur, events = (
            self.rows.u[rows],
            self.events[Kind.TOXICITY if toxicity else Kind.PROM],
        )
        done = any_in_window(events.row, events.day, ur, lo, hi)
        if toxicity:
            applies = (
                np.array([tp.toxicity for tp in tps]) & self.rows.scope_data[rows, None]
            )
            return applies, done
        applies = np.array([tp.prom for tp in tps]) & self.rows.scope_proms[rows, None]
        timing = np.array([_timing_id(tp.code) for tp in tps], dtype=np.int64)
        hit = np.zeros((self.rows.persons.size, len(tps)), dtype=np.bool_)
        ev, tp_i = np.nonzero(events.timing[:, None] == timing[None, :])
        hit[events.timing_row[ev], tp_i] = True
        return applies, done | hit[ur]


def _in_enrolment_order(
    parts: Sequence[tuple[Days, list[ScheduleItem]]],
) -> list[ScheduleItem]:
    """Merge the items of each protocol back into enrolment query order."""
    if len(parts) == 1:
        return parts[0][1]
    flat = [item for _, items in parts for item in items]
    if not flat:
        return []
    order = np.argsort(np.concatenate([row for row, _ in parts]), kind="stable")
    return [flat[i] for i in order.tolist()]


@cache
def _timing_id(code: str | None) -> int:
    """Concept id of a timepoint code; -1 (matches no timepoint) when unknown."""
    if code is None:
        return -1
    try:
        return our_concept_id("RTC Timepoint", code)
    except LookupError:
        return -1
