"""What the follow-up schedule is computed from, as arrays per enrolment and person.

The enrolment rows of a centre's consented patients (:class:`Enrolments`) and, per
unique person, the first RT course's start and end, the death date and today moved into
the person's pseudonymised time frame (:class:`PersonDays`), all as day numbers
(:mod:`cohort.schedule_days`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import ColumnElement, Select

from cohort.consent import ConsentState
from cohort.schedule_days import Days, Mask, index, ordinals
from cohort.vital import death_dates
from etl.store.course import read_first_courses
from omop.cohort_tables import Enrolment

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.orm import Session

    #: One enrolment: person id, pseudonym, protocol code, scope_data, scope_proms.
    EnrolmentRow = Row[int, str | None, str, bool, bool]

__all__ = ["Enrolments", "PersonDays", "enrolment_scope", "person_days"]


def enrolment_scope(
    care_site_id: int, person_ids: Sequence[int] | None
) -> list[ColumnElement[bool]]:
    """Conditions on ``Enrolment`` of the centre's consented (and chosen) persons."""
    scope = [
        Enrolment.care_site_id == care_site_id,
        Enrolment.state == ConsentState.CONSENTED.value,
    ]
    if person_ids is not None:
        scope.append(Enrolment.person_id.in_(list(person_ids)))
    return scope


@dataclass(frozen=True)
class Enrolments:
    """The enrolment rows as arrays; ``u`` is each row's row in ``persons``."""

    pid: list[int]
    persons: Days
    u: Days
    scope_data: Mask
    scope_proms: Mask
    code_of: Any
    pseudonyms: list[str]

    @classmethod
    def of(cls, people: Sequence[EnrolmentRow]) -> Enrolments:
        """Arrays of enrolment rows (person id, pseudonym, protocol, scopes)."""
        n = len(people)
        pid = np.fromiter((int(r[0]) for r in people), np.int64, n)
        persons, u = np.unique(pid, return_inverse=True)
        return cls(
            pid.tolist(),
            persons,
            u.reshape(-1),
            np.fromiter((bool(r[3]) for r in people), np.bool_, n),
            np.fromiter((bool(r[4]) for r in people), np.bool_, n),
            np.array([str(r[2]) for r in people], dtype=object),
            [str(r[1]) for r in people],
        )


@dataclass(frozen=True)
class PersonDays:
    """Per unique person: RT start and end, death and today in the person's frame."""

    start: Days
    end: Days
    has_rt: Mask
    has_end: Mask
    death: Days
    has_death: Mask
    local: Days


def person_days(
    session: Session,
    persons: Days,
    enrolled: Select[Any],
    today: datetime.date,
    offsets: Mapping[int, int] | None,
) -> PersonDays:
    """Return RT start and end, death and today (offset) of each of ``persons``."""
    rt = read_first_courses(session, enrolled)
    rt_row, rt_found = index(persons, np.array([r[0] for r in rt], dtype=np.int64))
    rt_row = rt_row[rt_found]
    start = np.zeros(persons.size, dtype=np.int64)
    end = np.zeros(persons.size, dtype=np.int64)
    has_rt = np.zeros(persons.size, dtype=np.bool_)
    has_end = np.zeros(persons.size, dtype=np.bool_)
    found_rt = [r for r, f in zip(rt, rt_found.tolist(), strict=True) if f]
    start[rt_row] = ordinals([r[1] for r in found_rt])
    has_rt[rt_row] = True
    ended = np.array([r[2] is not None for r in found_rt], dtype=np.bool_)
    has_end[rt_row[ended]] = True
    end[rt_row[ended]] = ordinals([r[2] for r in found_rt if r[2] is not None])
    end = np.where(has_end, end, start)  # any valid day; masked by has_end

    death_rows = death_dates(session, enrolled)
    d_row, d_found = index(
        persons, np.array([int(r[0]) for r in death_rows], dtype=np.int64)
    )
    has_death = np.zeros(persons.size, dtype=np.bool_)
    death = np.zeros(persons.size, dtype=np.int64)
    has_death[d_row[d_found]] = True
    death[d_row[d_found]] = ordinals([r[1] for r in death_rows])[d_found]

    local = np.full(persons.size, today.toordinal(), dtype=np.int64)
    if offsets:
        o_row, o_found = index(persons, np.fromiter(offsets.keys(), np.int64))
        local[o_row[o_found]] += np.fromiter(offsets.values(), np.int64)[o_found]
    return PersonDays(start, end, has_rt, has_end, death, has_death, local)
