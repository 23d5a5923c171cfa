"""Age at the start of each RT course: an OBSERVATION linked to the course EPISODE.

The age is computed at the centre from the *unshifted* dates while pseudonymising
(:mod:`etl.deid.age`: StudyDate and PatientBirthDate give Patient's Age in whole years;
the birth date itself is emptied) and reaches the loader as that number in the dose's
(else the plan's) header. It is stored as one OBSERVATION per course:

- ``observation_source_concept_id`` = our concept ``RTC Course`` / ``age_at_start``
  (no verified standard concept for "age" ships with the seed), so
  ``observation_concept_id`` 0;
- ``value_as_number`` = age in whole years, ``unit_concept_id`` 0 with
  ``unit_source_value`` ``a`` (UCUM year; no verified unit concept id);
- ``observation_event_id`` = the episode, ``obs_event_field_concept_id`` = the field
  concept of ``episode.episode_id``; ``observation_date`` = the (shifted) course start.

Objects without a birth date (and without Patient's Age) give no row. Other modules
read the ages through :func:`course_ages`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, Subquery, delete, func, select
from sqlalchemy.orm import Session

from etl.deid.age import age_years_of
from etl.dicom.index import ResolvedDataset
from etl.store.computed import ComputedDataset
from etl.store.course import shares_course
from omop.cdm import Observation
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import EHR

__all__ = [
    "AGE_CODE",
    "AGE_UNIT",
    "COURSE_VOCAB",
    "course_age_row",
    "course_age_years",
    "course_ages",
    "write_course_age",
]

COURSE_VOCAB, AGE_CODE = "RTC Course", "age_at_start"
AGE_UNIT = "a"  # UCUM annum
_CHUNK = 2000


def course_age_years(resolved: ResolvedDataset) -> int | None:
    """Return the patient's age in whole years at the dataset's study; None if unknown.

    Patient's Age of the RTDOSE (whose StudyDate starts the course), else of the
    first plan that has one.
    """
    for obj in (resolved.dose, *resolved.plans):
        years = age_years_of(obj.patient_age)
        if years is not None:
            return years
    return None


def write_course_age(
    session: Session,
    person_id: int,
    episode_id: int,
    computed: ComputedDataset,
    day: datetime.date,
) -> int | None:
    """Write (or keep) the age OBSERVATION of an RT course; return the age stored.

    A course loaded from one dataset gets that dataset's age (replaced on re-load);
    a course that already has an age from another dataset keeps it (the age at the
    course start). Without a known age nothing changes.
    """
    years = course_age_years(computed.resolved)
    field_id = field_concept_id(session, "episode.episode_id")
    concept = our_concept_id(COURSE_VOCAB, AGE_CODE)
    mine = (
        Observation.observation_event_id == episode_id,
        Observation.obs_event_field_concept_id == field_id,
        Observation.observation_source_concept_id == concept,
    )
    stored = session.scalar(select(Observation.value_as_number).where(*mine))
    if years is None or (
        stored is not None and shares_course(session, episode_id, computed)
    ):
        return None if stored is None else int(stored)
    session.execute(delete(Observation).where(*mine))
    session.add(
        Observation(**course_age_row(person_id, episode_id, years, day, field_id))
    )
    return years


def course_age_query(session: Session, episodes: Select[Any] | None = None) -> Subquery:
    """Return the stored ages at course start as a subquery ``(episode, value)``.

    One row per RT-course episode that has an age (the largest if several), for
    set-based readers that join it to their courses (the case-mix table).
    ``episodes``: a SQL selection of episode ids to restrict it to (None: every
    episode), so that the database aggregates only the courses the reader joins.
    """
    field_id = field_concept_id(session, "episode.episode_id")
    query = (
        select(
            Observation.observation_event_id.label("episode"),
            func.max(Observation.value_as_number).label("value"),
        )
        .where(
            Observation.obs_event_field_concept_id == field_id,
            Observation.observation_source_concept_id
            == our_concept_id(COURSE_VOCAB, AGE_CODE),
            Observation.value_as_number.is_not(None),
        )
        .group_by(Observation.observation_event_id)
    )
    if episodes is not None:
        query = query.where(Observation.observation_event_id.in_(episodes))
    return query.subquery()


def course_ages(session: Session, episode_ids: Iterable[int]) -> dict[int, int]:
    """Return ``{episode_id: age in whole years at the course start}`` (if known).

    One query per 2,000 courses.
    """
    episodes = sorted(set(episode_ids))
    if not episodes:
        return {}
    field_id = field_concept_id(session, "episode.episode_id")
    concept = our_concept_id(COURSE_VOCAB, AGE_CODE)
    out: dict[int, int] = {}
    for start in range(0, len(episodes), _CHUNK):
        for episode, value in session.execute(
            select(Observation.observation_event_id, Observation.value_as_number).where(
                Observation.observation_event_id.in_(episodes[start : start + _CHUNK]),
                Observation.obs_event_field_concept_id == field_id,
                Observation.observation_source_concept_id == concept,
            )
        ):
            if value is not None and episode is not None:
                out[int(episode)] = int(value)
    return out


def course_age_row(
    person_id: int, episode_id: int, years: int, day: datetime.date, field_id: int
) -> dict[str, Any]:
    """Build the age OBSERVATION of an RT course (``field_id``: the episode field)."""
    return {
        "person_id": person_id,
        "observation_concept_id": 0,
        "observation_date": day,
        "observation_type_concept_id": EHR,
        "value_as_number": float(years),
        "unit_concept_id": 0,
        "unit_source_value": AGE_UNIT,
        "observation_source_value": "age at RT course start",
        "observation_source_concept_id": our_concept_id(COURSE_VOCAB, AGE_CODE),
        "observation_event_id": episode_id,
        "obs_event_field_concept_id": field_id,
    }
