"""Counts of stored assessments, for overviews (no patient-level rows)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from instruments.store import read_survey_timings
from omop.cdm import CareSite, Person

__all__ = ["prom_counts"]


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
