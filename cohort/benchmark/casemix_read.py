"""The per-patient reads of the case-mix table, in one set-based query.

:func:`cohort.benchmark.queries_funnel.casemix_table` needs, per consented patient
with a first RT course: the centre, treatment site and last contact (enrolment),
sex, the first course (:func:`etl.store.course.first_courses_query`), its age at the
start (:func:`etl.store.course_age.course_age_query`) and prescription
(:func:`etl.store.metric_reads.prescription_query`), the stage
(:func:`cohort.stage.stage_query`), the death date
(:func:`cohort.vital.death_dates`), and, of the CTCAE assessments on or after the
course start (:func:`instruments.store.toxicity_days.assessment_days`), the last
day and the first day with a grade >= ``min_grade`` of the term. Reading these with
one query per source and IN-lists of 2,000 ids costs round trips, parameter
compiling and many rows; here one query selects the first courses once (a common
table expression), aggregates each source over those courses only (the assessments
per patient too) and joins the patient's values. Same values as the separate reads.
"""

from __future__ import annotations

import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, Subquery, select
from sqlalchemy.orm import Session

from cohort.stage import stage_group, stage_query
from etl.store.course import first_courses_query
from etl.store.course_age import course_age_query
from etl.store.metric_reads import prescription_query
from instruments.store.toxicity_days import assessment_spans_query
from omop.cdm import Death, Observation, Person
from omop.cohort_tables import Enrolment

__all__ = ["CasemixReads", "read_casemix"]


class CasemixReads(NamedTuple):
    """The reads of the case-mix table, keyed as the separate readers key them."""

    #: person -> (care_site_id, treatment_site, last_contact_date)
    enrolled: dict[int, tuple[int, str | None, datetime.date | None]]
    #: person -> gender concept id
    sexes: dict[int, int | None]
    #: person -> first RT course: (start, end, episode_id) of its
    #: :class:`~etl.store.course.FirstCourse` (plain tuples of dates and ints, which
    #: the garbage collector stops tracking: thousands of live tracked objects per
    #: read trigger full collections of the whole heap)
    courses: dict[int, tuple[datetime.date, datetime.date | None, int]]
    #: episode -> age in whole years at the course start
    ages: dict[int, int]
    #: episode -> (total dose Gy, fractions)
    scheme: dict[int, tuple[float | None, int | None]]
    #: person -> death date
    deaths: dict[int, datetime.date]
    #: person -> last CTCAE assessment day on or after the course start
    seen: dict[int, datetime.date]
    #: person -> first day on or after the course start with a grade >= min_grade
    hits: dict[int, datetime.date]
    #: person -> overall stage group (of the persons with one)
    stages: dict[int, str]


def read_casemix(
    session: Session, persons: Select[Any], term: str, min_grade: int
) -> CasemixReads:
    """Read what the case-mix table needs of the persons in ``persons``.

    Parameters
    ----------
    session
        Open session (read only).
    persons
        A SQL selection of person ids (enrolled ones).
    term, min_grade
        The endpoint: a grade >= ``min_grade`` of CTCAE ``term`` (compared ignoring
        case).

    Returns
    -------
    CasemixReads
        Only persons with a first RT course (and an enrolment) appear in
        ``courses``.
    """
    first = first_courses_query(persons).cte("first_course")
    episodes = select(first.c.episode_id)
    age = course_age_query(session, episodes)
    total = prescription_query(session, "total_dose", episodes)
    fractions = prescription_query(session, "fractions", episodes)
    stage = stage_query()
    spans = _assessment_spans(first, term, min_grade)

    query = (
        select(
            first.c.person_id, first.c.episode_start_date, first.c.episode_end_date,
            first.c.episode_id, Enrolment.care_site_id, Enrolment.treatment_site,
            Enrolment.last_contact_date, Person.gender_concept_id, Death.death_date,
            age.c.value, total.c.value, fractions.c.value, stage.c.concept,
            spans.c[1], spans.c[2],
        )
        .select_from(first)
        .join(Enrolment, Enrolment.person_id == first.c.person_id)
        .outerjoin(Person, Person.person_id == first.c.person_id)
        .outerjoin(Death, Death.person_id == first.c.person_id)
        .outerjoin(age, age.c.episode == first.c.episode_id)
        .outerjoin(total, total.c.episode == first.c.episode_id)
        .outerjoin(fractions, fractions.c.episode == first.c.episode_id)
        .outerjoin(stage, stage.c.person_id == first.c.person_id)
        .outerjoin(spans, spans.c.person_id == first.c.person_id)
    )  # fmt: skip
    out = CasemixReads({}, {}, {}, {}, {}, {}, {}, {}, {})
    enrolled, sexes, courses, ages = out.enrolled, out.sexes, out.courses, out.ages
    scheme, deaths, seen, hits, stages = out[4:]
    for row in session.execute(query):  # streamed: no list of rows kept alive
        pid, start, end, ep, centre, site, contact, sex, died = row[:9]
        years, gy, n, staged, last, first_hit = row[9:]
        enrolled[pid] = (int(centre), site, contact)
        sexes[pid] = sex
        courses[pid] = (start, end, ep)
        if years is not None:
            ages[ep] = int(years)
        if gy is not None or n is not None:
            dose, count = scheme.get(ep, (None, None))
            scheme[ep] = (
                dose if gy is None else float(gy),
                count if n is None else int(n),
            )
        if died is not None:
            deaths[pid] = died
        if staged is not None:
            stages[pid] = stage_group(staged)
        if last is not None:
            seen[pid] = last
            if first_hit is not None:
                hits[pid] = first_hit
    return out


def _assessment_spans(first: Any, term: str, min_grade: int) -> Subquery:
    """Per person: the last assessment and first hit on or after the course start."""
    return (
        assessment_spans_query(term, min_grade, casefold=True)
        .join(first, first.c.person_id == Observation.person_id)
        .where(Observation.observation_date >= first.c.episode_start_date)
        .subquery()
    )
