"""Counts of stored assessments, for overviews (no patient-level rows)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from instruments.store import read_survey_timings
from omop.cdm import CareSite, Observation, Person, VisitOccurrence
from omop.vocab.standard import CASE_REPORT_FORM

__all__ = ["prom_counts", "toxicity_counts"]


def prom_counts(session: Session) -> dict[tuple[str, str], int]:
    """Return the number of stored questionnaires per ``(centre, timepoint)``.

    The centre is the person's CARE_SITE code; the timepoint is read through the
    PROM store's own reader (:func:`instruments.store.read_survey_timings`), so it
    follows the one convention that writes it.
    """
    centre_of = dict(
        session.execute(
            select(Person.person_id, CareSite.care_site_source_value).join(
                CareSite, CareSite.care_site_id == Person.care_site_id
            )
        ).all()
    )
    counts = Counter(
        (str(centre_of.get(s.person_id)), str(s.timepoint))
        for s in read_survey_timings(session)
    )
    return dict(counts)


def toxicity_counts(session: Session) -> list[tuple[int, str, int]]:
    """Return ``(care_site_id, timepoint, persons assessed)`` of the CTCAE gradings.

    A grade OBSERVATION of type Case Report Form marks an assessment (as
    :func:`instruments.store.read_toxicity_dates` reads it); its visit names the
    timepoint. Counted in SQL, one person once per timepoint.
    """
    rows = session.execute(
        select(
            Person.care_site_id,
            VisitOccurrence.visit_source_value,
            func.count(distinct(Observation.person_id)),
        )
        .join(Person, Person.person_id == Observation.person_id)
        .join(
            VisitOccurrence,
            VisitOccurrence.visit_occurrence_id == Observation.visit_occurrence_id,
        )
        .where(Observation.observation_type_concept_id == CASE_REPORT_FORM)
        .group_by(Person.care_site_id, VisitOccurrence.visit_source_value)
    ).all()
    return [(int(c or 0), str(t), int(n)) for c, t, n in rows if t]
