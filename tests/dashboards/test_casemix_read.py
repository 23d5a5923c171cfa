"""The case-mix read (one joined query) equals the separate per-source readers.

The national cohort is built through the production writers (national_world.py),
on SQLite and PostgreSQL. :func:`cohort.benchmark.casemix_read.read_casemix` selects
the first courses once and restricts every source to them; the expectation reads
each source on its own: the first courses (``read_first_courses``), the enrolment
and person rows, the ages (``course_ages``), prescriptions (``prescriptions``),
deaths (``death_dates``), stages (``stages``) and the day-by-day CTCAE assessments
(``assessment_days``), summarised here in Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from national_world import National
from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from web_world import audited_session

from cohort.benchmark.casemix_read import CasemixReads, read_casemix
from cohort.stage import stages
from cohort.vital import death_dates
from etl.store.course import read_first_courses
from etl.store.course_age import course_ages
from etl.store.metric_reads import prescriptions
from instruments.store.toxicity_days import assessment_days
from omop.cdm import Episode, Person
from omop.cohort_tables import Enrolment

TERM = "Pneumonitis"


@pytest.fixture
def db(national: National, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    yield from audited_session(national, monkeypatch)


def _persons(site: str | None) -> Select[Any]:
    query = select(Enrolment.person_id).where(Enrolment.state == "consented")
    return query if site is None else query.where(Enrolment.treatment_site == site)


def _separately(
    session: Session, persons: Select[Any], term: str, min_grade: int
) -> CasemixReads:
    courses = {c.person_id: c for c in read_first_courses(session, persons)}
    episodes = [c.episode_id for c in courses.values() if c.episode_id is not None]
    enrolled, sexes = {}, {}
    for pid in courses:
        enrolment = session.get(Enrolment, pid)
        person = session.get(Person, pid)
        assert enrolment is not None
        enrolled[pid] = (
            enrolment.care_site_id,
            enrolment.treatment_site,
            enrolment.last_contact_date,
        )
        sexes[pid] = None if person is None else person.gender_concept_id
    scheme = {
        ep: value
        for ep, value in prescriptions(session, episodes).items()
        if value != (None, None)
    }
    seen: dict[int, Any] = {}
    hits: dict[int, Any] = {}
    for day in assessment_days(session, persons, term, min_grade, casefold=True):
        course = courses.get(day.person_id)
        if course is None or day.assessed_on < course.start:
            continue
        seen[day.person_id] = max(
            seen.get(day.person_id, day.assessed_on), day.assessed_on
        )
        if day.hit and day.person_id not in hits:
            hits[day.person_id] = day.assessed_on  # ordered by day
    return CasemixReads(
        enrolled=enrolled,
        sexes=sexes,
        courses={p: (c.start, c.end, c.episode_id) for p, c in courses.items()},
        ages=course_ages(session, episodes),
        scheme=scheme,
        deaths={p: d for p, d in death_dates(session, persons) if p in courses},
        seen=seen,
        hits=hits,
        stages=stages(session, courses),
    )


@pytest.mark.parametrize(
    ("site", "min_grade"), [("lung", 2), (None, 2), ("lung", 1), ("breast", 2)]
)
def test_read_casemix_equals_the_separate_readers(
    db: Session, site: str | None, min_grade: int
) -> None:
    persons = _persons(site)
    got = read_casemix(db, persons, TERM, min_grade)
    want = _separately(db, persons, TERM, min_grade)
    for field in CasemixReads._fields:
        assert getattr(got, field) == getattr(want, field), field
    if site == "breast":  # nobody: the national cohort is of lung patients
        assert got == CasemixReads({}, {}, {}, {}, {}, {}, {}, {}, {})
        return
    # the comparison is not vacuous: every source has values
    assert got.courses and got.ages and got.scheme and got.stages and got.seen
    assert got.hits and got.deaths
    assert len(got.ages) == len(got.courses)


def test_owner_subqueries_restricted_to_episodes(db: Session) -> None:
    from etl.store.course_age import course_age_query
    from etl.store.metric_reads import prescription_query

    courses = read_first_courses(db, _persons("lung"))
    some = sorted(c.episode_id for c in courses if c.episode_id is not None)[::3]
    chosen = select(Episode.episode_id).where(Episode.episode_id.in_(some))
    ages = course_age_query(db, chosen)
    assert dict(db.execute(select(ages.c.episode, ages.c.value)).all()) == {
        ep: float(years) for ep, years in course_ages(db, some).items()
    }
    everything = course_age_query(db)
    assert len(db.execute(select(everything.c.episode)).all()) > len(some)
    for code, index in (("total_dose", 0), ("fractions", 1)):
        query = prescription_query(db, code, chosen)  # type: ignore[arg-type]
        got = dict(db.execute(select(query.c.episode, query.c.value)).all())
        assert got == {
            ep: pair[index]
            for ep, pair in prescriptions(db, some).items()
            if pair[index] is not None
        }
