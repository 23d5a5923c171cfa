"""One RT course EPISODE for a course of several plans (issue 18, part 3).

Every loaded plan gets its own RT course EPISODE (32940, :mod:`etl.store.course`)
with its PROCEDURE_OCCURRENCE, prescription and age. When the import finds two or
more plan doses of one person on one frame of reference (a sequential boost, an
adaptation: :mod:`etl.ingest.course_stage`), they are one course:

- one RT course EPISODE (32940) for the course, child of the person's disease
  EPISODE (32533), spanning the first plan's start to the latest plan's end
  (``episode_end_date`` None only when no plan's end is known);
- the plans' episodes become its children (``episode_parent_id`` = the course,
  ``episode_number`` = the plan's order by start); they keep their prescription,
  procedure and age, which the per-plan DVHs and their EQD2 use;
- each plan's PROCEDURE_OCCURRENCE is also linked to the course by EPISODE_EVENT,
  so the course's events are its plans' treatments;
- the course's prescription MEASUREMENTs: the sum of the plans' total doses and of
  their fractions (when all are known), the dose per fraction and intent when all
  plans agree.

Readers of courses leave the plan episodes out
(:func:`etl.store.course.is_plan_episode`); the course-level dose metrics
(:mod:`etl.store.course_metrics`) are linked to the course EPISODE.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from etl.store.course_rx import (
    Prescription,
    read_prescriptions,
    write_prescription_values,
)
from omop.cdm import Episode, EpisodeEvent
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import EHR, RT_COURSE_EPISODE

__all__ = ["course_of_plans", "course_span", "group_course"]


def course_of_plans(session: Session, plan_episode_ids: Sequence[int]) -> int | None:
    """Return the course EPISODE the plan episodes were grouped into (None: none).

    The first RT course EPISODE that is the parent of one of them.
    """
    plan = aliased(Episode)
    found = session.scalars(
        select(Episode.episode_id)
        .join(plan, plan.episode_parent_id == Episode.episode_id)
        .where(
            plan.episode_id.in_(list(plan_episode_ids)),
            Episode.episode_concept_id == RT_COURSE_EPISODE,
        )
        .order_by(Episode.episode_id)
    ).first()
    return int(found) if found is not None else None


def group_course(
    session: Session, person_id: int, plan_episode_ids: Sequence[int]
) -> int:
    """Return the RT course EPISODE of several plan episodes, created or updated.

    Parameters
    ----------
    session
        The caller's transaction (never committed here).
    person_id
        The person whose plans they are.
    plan_episode_ids
        The RT course EPISODEs of the plans (two or more, one person, one frame of
        reference), as written by :func:`etl.store.course.write_course`.

    Returns
    -------
    int
        The course EPISODE: found as the parent of one of the plans, else created
        as a child of the plans' disease EPISODE. Its span, the plans' parent and
        order, the EPISODE_EVENT links and the course prescription are (re)written.
    """
    plans = list(
        session.scalars(
            select(Episode)
            .where(
                Episode.episode_id.in_(list(plan_episode_ids)),
                Episode.person_id == person_id,
                Episode.episode_concept_id == RT_COURSE_EPISODE,
            )
            .order_by(Episode.episode_start_date, Episode.episode_id)
        )
    )
    if len(plans) != len(set(plan_episode_ids)):
        msg = (
            f"episodes {sorted(plan_episode_ids)}: not RT courses of person {person_id}"
        )
        raise ValueError(msg)
    found = course_of_plans(session, [p.episode_id for p in plans])
    course = session.get(Episode, found) if found is not None else None
    start, end = course_span(plans)
    if course is None:
        course = Episode(
            person_id=person_id,
            episode_parent_id=plans[0].episode_parent_id,
            episode_concept_id=RT_COURSE_EPISODE,
            episode_start_date=start,
            episode_object_concept_id=0,
            episode_type_concept_id=EHR,
            episode_source_concept_id=our_concept_id("RTC Course", "rt_course"),
        )
        session.add(course)
    course.episode_start_date = start
    course.episode_end_date = end
    course.episode_source_value = f"RT course of {len(plans)} plans"
    session.flush()
    for number, plan in enumerate(plans, start=1):
        plan.episode_parent_id = course.episode_id
        plan.episode_number = number
    _link_procedures(session, course.episode_id, [p.episode_id for p in plans])
    write_prescription_values(
        session,
        person_id,
        course.episode_id,
        start,
        _course_prescription(
            list(read_prescriptions(session, [p.episode_id for p in plans]).values())
        ),
    )
    session.flush()
    return int(course.episode_id)


def _link_procedures(session: Session, course_id: int, plan_ids: list[int]) -> None:
    """Link the plans' PROCEDURE_OCCURRENCEs to the course by EPISODE_EVENT."""
    field = field_concept_id(session, "procedure_occurrence.procedure_occurrence_id")
    procedures = set(
        session.scalars(
            select(EpisodeEvent.event_id).where(
                EpisodeEvent.episode_id.in_(plan_ids),
                EpisodeEvent.episode_event_field_concept_id == field,
            )
        )
    )
    linked = set(
        session.scalars(
            select(EpisodeEvent.event_id).where(
                EpisodeEvent.episode_id == course_id,
                EpisodeEvent.episode_event_field_concept_id == field,
            )
        )
    )
    for procedure in sorted(procedures - linked):
        session.add(
            EpisodeEvent(
                episode_id=course_id,
                event_id=procedure,
                episode_event_field_concept_id=field,
            )
        )


def _course_prescription(plans: list[Prescription]) -> Prescription:
    """Return a course's prescription: its plans' sums and shared values."""
    totals = [p.total_gy for p in plans]
    fractions = [p.fractions for p in plans]
    per = {round(p.per_fraction_gy, 6) if p.per_fraction_gy else None for p in plans}
    intents = {p.intent for p in plans}
    shared_per = per.pop() if len(per) == 1 else None
    return Prescription(
        sum(t for t in totals if t is not None) if None not in totals else None,
        sum(f for f in fractions if f is not None) if None not in fractions else None,
        shared_per,
        intents.pop() if len(intents) == 1 else None,
    )


def course_span(plans: Sequence[Episode]) -> tuple[datetime.date, datetime.date | None]:
    """Return the (start, end) of a course from its plans' episodes."""
    ends = [p.episode_end_date for p in plans if p.episode_end_date is not None]
    return min(p.episode_start_date for p in plans), (max(ends) if ends else None)
