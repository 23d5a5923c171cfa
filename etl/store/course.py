"""The RT course of a loaded dataset: its EPISODE, PROCEDURE and prescription.

One RT course EPISODE per plan (the dataset's ``course_key``): ``episode_concept_id``
32940 (Cancer Radiotherapy), child (``episode_parent_id``) of the person's disease
EPISODE 32533 (:func:`disease_episode`, created with the first course), with one
PROCEDURE_OCCURRENCE linked by EPISODE_EVENT, and the prescription as MEASUREMENTs
(total dose, fractions, dose per fraction, intent) with ``measurement_event_id`` =
the episode and the episode field concept.

The course starts on the dataset's study date (:func:`study_day`, the shifted
StudyDate of the dose, else of the plan); a dataset without a readable study date is
not loaded (:class:`NoStudyDateError`; the import holds it as ``no-study-date``): the
course start is never invented. ``episode_end_date`` (and the procedure's end) is the
*planned* last fraction (:func:`course_end`: the planned fractions of all the dose's
plans from the start, five a week Monday to Friday,
:func:`~etl.store.course_dates.planned_end_date`); a later treatment record may
replace it. A re-load of the course's only dataset recomputes it; a second dataset
of the same course (another dose of its plans, e.g. a sequential boost summed with
its plan) extends it to the later of the two. Unknown fractions leave it unchanged.

Plans of one person on one frame of reference are grouped by the import into one
course EPISODE whose children their episodes become (:mod:`etl.store.course_episode`);
readers of courses leave such plan episodes out (:func:`is_plan_episode`).

Every other module reads these rows through the readers here:
:func:`course_fractions` (prescribed fractions of many courses),
:func:`episode_fractions` and :func:`read_first_courses` (first RT course per person).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import Session, aliased

from etl.dicom.index import ResolvedDataset
from etl.store.computed import ComputedDataset
from etl.store.course_dates import planned_end_date
from etl.store.course_rx import (
    PRESCRIPTION_VOCAB,
    Prescription,
    prescription_value_rows,
    write_prescription_values,
)
from omop.cdm import Episode, EpisodeEvent, Measurement, ProcedureOccurrence
from omop.errors import RTCohortError
from omop.ingest_tables import IngestDataset
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import (
    DISEASE_EPISODE,
    EHR,
    MALIGNANT_NEOPLASTIC_DISEASE,
    RT_COURSE_EPISODE,
    RT_PROCEDURE,
)

__all__ = [
    "PRESCRIPTION_VOCAB",
    "FirstCourse",
    "NoStudyDateError",
    "course_end",
    "course_fractions",
    "dicom_day",
    "disease_episode",
    "episode_fractions",
    "first_courses_query",
    "is_plan_episode",
    "prescription_rows",
    "read_first_courses",
    "shares_course",
    "study_day",
    "write_course",
    "write_prescription",
]

_CHUNK = 2000


class NoStudyDateError(RTCohortError, ValueError):
    """A dataset has no readable study date: its RT course start would be invented."""


def dicom_day(text_date: str) -> datetime.date | None:
    """Return the date of a DICOM DA value (``YYYYMMDD``); None if missing or bad."""
    try:
        return (
            datetime.datetime.strptime(text_date[:8], "%Y%m%d")
            .replace(tzinfo=datetime.UTC)
            .date()
        )
    except ValueError:
        return None


def study_day(resolved: ResolvedDataset) -> datetime.date | None:
    """Return the dataset's study date (the RT course start), None when unknown.

    The RTDOSE's StudyDate, else the first plan's; a missing or unreadable date gives
    None and the import holds the dataset (reason ``no-study-date``).
    """
    return dicom_day(
        resolved.dose.study_date
        or (resolved.plans[0].study_date if resolved.plans else "")
    )


def write_course(
    session: Session, person_id: int, computed: ComputedDataset, day: datetime.date
) -> tuple[int, int]:
    """Return (episode_id, procedure_occurrence_id) of the dataset's RT course."""
    key = computed.resolved.course_key
    found = session.execute(
        select(IngestDataset.episode_id)
        .where(
            IngestDataset.person_id == person_id,
            IngestDataset.plan_sop_instance_uid == key,
            IngestDataset.episode_id.is_not(None),
        )
        .limit(1)
    ).scalar()
    procedure_field = field_concept_id(
        session, "procedure_occurrence.procedure_occurrence_id"
    )
    end = course_end(computed, day)
    if found is not None:
        procedure = session.scalar(
            select(EpisodeEvent.event_id).where(
                EpisodeEvent.episode_id == found,
                EpisodeEvent.episode_event_field_concept_id == procedure_field,
            )
        )
        if procedure is not None:
            sole = not shares_course(session, found, computed)
            _set_end(session, int(found), int(procedure), end, replace=sole)
            return int(found), int(procedure)
    parent = disease_episode(session, person_id, day)
    episode = Episode(**course_episode_row(person_id, parent, computed, day))
    session.add(episode)
    procedure_row = ProcedureOccurrence(
        **course_procedure_row(person_id, computed, day)
    )
    session.add(procedure_row)
    session.flush()
    session.add(
        EpisodeEvent(
            episode_id=episode.episode_id,
            event_id=procedure_row.procedure_occurrence_id,
            episode_event_field_concept_id=procedure_field,
        )
    )
    session.flush()
    return episode.episode_id, procedure_row.procedure_occurrence_id


def disease_episode_row(person_id: int, day: datetime.date) -> dict[str, Any]:
    """Return the row of a person's disease EPISODE (32533), parent of RT courses."""
    return {
        "person_id": person_id,
        "episode_concept_id": DISEASE_EPISODE,
        "episode_start_date": day,
        "episode_object_concept_id": MALIGNANT_NEOPLASTIC_DISEASE,
        "episode_type_concept_id": EHR,
        "episode_source_value": "cancer treated with radiotherapy",
    }


def course_episode_row(
    person_id: int, parent: int, computed: ComputedDataset, day: datetime.date
) -> dict[str, Any]:
    """Return the row of an RT-course EPISODE under the disease episode ``parent``."""
    return {
        "person_id": person_id,
        "episode_parent_id": parent,
        "episode_concept_id": RT_COURSE_EPISODE,
        "episode_start_date": day,
        "episode_end_date": course_end(computed, day),
        "episode_object_concept_id": RT_PROCEDURE,
        "episode_type_concept_id": EHR,
        "episode_source_value": (computed.plan_label or "RT course")[:50],
        "episode_source_concept_id": our_concept_id("RTC Course", "rt_course"),
    }


def course_procedure_row(
    person_id: int, computed: ComputedDataset, day: datetime.date
) -> dict[str, Any]:
    """Return the PROCEDURE_OCCURRENCE row of an RT course (EPISODE_EVENT-linked)."""
    return {
        "person_id": person_id,
        "procedure_concept_id": RT_PROCEDURE,
        "procedure_date": day,
        "procedure_end_date": course_end(computed, day),
        "procedure_type_concept_id": EHR,
        "procedure_source_value": "radiotherapy course",
        "procedure_source_concept_id": our_concept_id("RTC Course", "rt_course"),
        "quantity": computed.n_fractions,
    }


def disease_episode(session: Session, person_id: int, day: datetime.date) -> int:
    """Return the person's disease EPISODE (32533), created with the first course.

    The disease episode is the parent (``episode_parent_id``) of every RT course
    (OHDSI Oncology conventions); it starts with the earliest course.
    """
    found = session.scalar(
        select(Episode)
        .where(
            Episode.person_id == person_id,
            Episode.episode_concept_id == DISEASE_EPISODE,
        )
        .order_by(Episode.episode_id)
        .limit(1)
    )
    if found is not None:
        found.episode_start_date = min(found.episode_start_date, day)
        return int(found.episode_id)
    disease = Episode(**disease_episode_row(person_id, day))
    session.add(disease)
    session.flush()
    return int(disease.episode_id)


def course_end(computed: ComputedDataset, day: datetime.date) -> datetime.date | None:
    """Return the planned last fraction of a dataset's course (None: fractions unknown).

    :func:`~etl.store.course_dates.planned_end_date` from the dataset's study day and
    the planned fractions of all its plans, five a week.
    """
    n = computed.course_fractions or computed.n_fractions
    return planned_end_date(day, n) if n and n > 0 else None


def shares_course(session: Session, episode_id: int, computed: ComputedDataset) -> bool:
    """Return whether another dataset (another RTDOSE) was loaded into the course."""
    others = session.scalar(
        select(func.count())
        .select_from(IngestDataset)
        .where(
            IngestDataset.episode_id == episode_id,
            IngestDataset.dose_sop_instance_uid
            != computed.resolved.dose.sop_instance_uid,
        )
    )
    return bool(others)


def _set_end(
    session: Session,
    episode_id: int,
    procedure_id: int,
    end: datetime.date | None,
    *,
    replace: bool,
) -> None:
    """Set the planned end of a course: replaced, or extended (max) when shared."""
    if end is None:
        return
    episode = session.get(Episode, episode_id)
    procedure = session.get(ProcedureOccurrence, procedure_id)
    if episode is None or procedure is None:
        return
    if not replace and episode.episode_end_date is not None:
        end = max(end, episode.episode_end_date)
    episode.episode_end_date = end
    procedure.procedure_end_date = end


def write_prescription(
    session: Session,
    person_id: int,
    episode_id: int,
    computed: ComputedDataset,
    day: datetime.date,
) -> None:
    """Write (replace) the prescription MEASUREMENTs of an RT course."""
    write_prescription_values(session, person_id, episode_id, day, _rx(computed))


def _rx(computed: ComputedDataset) -> Prescription:
    total, n = computed.prescription_gy, computed.n_fractions
    per_fraction = total / n if total and n else None
    return Prescription(total, n, per_fraction, computed.plan_intent or None)


def prescription_rows(
    person_id: int,
    episode_id: int,
    computed: ComputedDataset,
    day: datetime.date,
    field_id: int,
) -> list[dict[str, Any]]:
    """Build the prescription MEASUREMENTs of an RT course (``field_id``: episode)."""
    return prescription_value_rows(person_id, episode_id, day, _rx(computed), field_id)


def episode_fractions(session: Session, episode_id: int) -> int | None:
    """Return the prescribed number of fractions of a course (None if unknown)."""
    return course_fractions(session, [episode_id]).get(episode_id)


def course_fractions(session: Session, episode_ids: Iterable[int]) -> dict[int, int]:
    """Return ``{episode_id: prescribed fractions}`` of RT courses (unknown: absent).

    One query per 2,000 courses (the prescription MEASUREMENT ``fractions``).
    """
    episodes = sorted(set(episode_ids))
    if not episodes:
        return {}
    field_id = field_concept_id(session, "episode.episode_id")
    concept = our_concept_id(PRESCRIPTION_VOCAB, "fractions")
    out: dict[int, int] = {}
    for start in range(0, len(episodes), _CHUNK):
        for episode, value in session.execute(
            select(Measurement.measurement_event_id, Measurement.value_as_number).where(
                Measurement.measurement_event_id.in_(episodes[start : start + _CHUNK]),
                Measurement.meas_event_field_concept_id == field_id,
                Measurement.measurement_source_concept_id == concept,
            )
        ):
            if value and episode is not None:
                out[int(episode)] = int(value)
    return out


class FirstCourse(NamedTuple):
    """The first RT course of a person (by start date, then episode id)."""

    person_id: int
    start: datetime.date
    end: datetime.date | None
    episode_id: int | None = None


def is_plan_episode(episode: type[Episode] | Any) -> ColumnElement[bool]:
    """Return SQL: the RT course EPISODE is one plan of a course of several.

    Such an episode is a child (``episode_parent_id``) of another RT course EPISODE
    (:mod:`etl.store.course_episode`); readers of *courses* leave it out.
    """
    parent = aliased(Episode)
    return exists().where(
        parent.episode_id == episode.episode_parent_id,
        parent.episode_concept_id == RT_COURSE_EPISODE,
    )


def first_courses_query(persons: Select[Any]) -> Select[Any]:
    """Return SQL: the first RT course of each person in ``persons``.

    Columns ``person_id, episode_start_date, episode_end_date, episode_id``; see
    :func:`read_first_courses`.
    """
    first = (
        select(
            Episode.person_id,
            Episode.episode_start_date,
            Episode.episode_end_date,
            Episode.episode_id,
            func.row_number()
            .over(
                partition_by=Episode.person_id,
                order_by=(Episode.episode_start_date, Episode.episode_id),
            )
            .label("n"),
        )
        .where(
            Episode.episode_concept_id == RT_COURSE_EPISODE,
            Episode.person_id.in_(persons),
            ~is_plan_episode(Episode),
        )
        .subquery()
    )
    return select(
        first.c.person_id,
        first.c.episode_start_date,
        first.c.episode_end_date,
        first.c.episode_id,
    ).where(first.c.n == 1)


def read_first_courses(session: Session, persons: Select[Any]) -> list[FirstCourse]:
    """Return the first RT course EPISODE of each person in ``persons`` (one query).

    Courses only: the plan episodes of a course of several plans are left out
    (:func:`is_plan_episode`), so the course's start and end span all its plans.
    """
    rows = session.execute(first_courses_query(persons)).all()
    return [FirstCourse(int(p), s, e, int(i)) for p, s, e, i in rows]
