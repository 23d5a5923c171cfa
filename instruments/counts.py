"""Counts of stored assessments, for overviews (no patient-level rows)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omop.cdm import CareSite, Person, SurveyConduct, VisitOccurrence

__all__ = ["prom_counts"]


def prom_counts(session: Session) -> dict[tuple[str, str], int]:
    """Return the number of stored questionnaires per ``(centre, timepoint)``.

    The centre is the person's CARE_SITE code; the timepoint is the visit's source
    value (``baseline``, ``m3``, ...).
    """
    rows = session.execute(
        select(
            CareSite.care_site_source_value,
            VisitOccurrence.visit_source_value,
            func.count(),
        )
        .select_from(SurveyConduct)
        .join(Person, Person.person_id == SurveyConduct.person_id)
        .join(CareSite, CareSite.care_site_id == Person.care_site_id)
        .join(
            VisitOccurrence,
            VisitOccurrence.visit_occurrence_id == SurveyConduct.visit_occurrence_id,
        )
        .group_by(CareSite.care_site_source_value, VisitOccurrence.visit_source_value)
    ).all()
    return {(str(c), str(t)): int(n) for c, t, n in rows}
