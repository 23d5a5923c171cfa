"""Assessment days of stored CTCAE gradings, aggregated in SQL for the benchmarks.

The benchmark pages need, per person, the days on which toxicity was assessed and
whether a grade of at least some value of one term was recorded on each; reading
every grading (:func:`instruments.store.read_toxicity`) into a frame costs seconds
at national scale. :func:`assessment_days` returns one row per person and day
(``GROUP BY person, day``) with the same reading rules: a grade OBSERVATION of type
Case Report Form whose source concept is a CTCAE term concept (vocabulary
``CTCAE v*``) marks an assessment, its value is the grade (none read as 0).
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from instruments.ctcae import load_catalogue
from omop.cdm import Concept, Observation
from omop.vocab.registry import load_registry
from omop.vocab.standard import CASE_REPORT_FORM

__all__ = [
    "AssessmentDay",
    "assessment_days",
    "assessment_spans",
    "assessment_spans_query",
    "term_concept_ids",
]

_CTCAE = "CTCAE v"


class AssessmentDay(NamedTuple):
    """One day on which a person's toxicity was assessed (dates as stored)."""

    person_id: int
    assessed_on: date
    hit: bool
    """Whether a grade >= the asked minimum of the asked term was recorded."""


@cache
def term_concept_ids(term: str, *, casefold: bool = False) -> tuple[int, ...]:
    """Return the concept ids of CTCAE ``term`` in every catalogue version.

    ``term`` is the catalogue's term name (``"Pneumonitis"``), compared exactly or,
    with ``casefold``, ignoring case.
    """
    wanted = term.casefold() if casefold else term
    found = []
    for (vocabulary, code), concept_id in load_registry().items():
        if not vocabulary.startswith(_CTCAE):
            continue
        name = load_catalogue(vocabulary.removeprefix(_CTCAE)).term(code).term
        if (name.casefold() if casefold else name) == wanted:
            found.append(concept_id)
    return tuple(sorted(found))


def assessment_days(
    session: Session,
    persons: Select[Any],
    term: str,
    min_grade: int,
    *,
    casefold: bool = False,
) -> list[AssessmentDay]:
    """Return each day a person in ``persons`` had a CTCAE grading.

    Parameters
    ----------
    persons
        A SQL selection of person ids.
    term, min_grade, casefold
        ``hit`` marks days with a grade >= ``min_grade`` of ``term`` (see
        :func:`term_concept_ids`).

    Returns
    -------
    list of AssessmentDay
        Ordered by person and day.
    """
    ids = list(term_concept_ids(term, casefold=casefold))
    grade = func.coalesce(Observation.value_as_number, 0)
    hit = case(
        (Observation.observation_source_concept_id.in_(ids) & (grade >= min_grade), 1),
        else_=0,
    )
    query = (
        select(Observation.person_id, Observation.observation_date, func.max(hit))
        .join(Concept, Concept.concept_id == Observation.observation_source_concept_id)
        .where(
            Observation.observation_type_concept_id == CASE_REPORT_FORM,
            Concept.vocabulary_id.startswith(_CTCAE),
            Observation.person_id.in_(persons),
        )
        .group_by(Observation.person_id, Observation.observation_date)
        .order_by(Observation.person_id, Observation.observation_date)
    )
    return [
        AssessmentDay(int(p), d, bool(h)) for p, d, h in session.execute(query).all()
    ]


def assessment_spans_query(
    term: str, min_grade: int, *, casefold: bool = False
) -> Select[int, date, Any]:
    """Return SQL: per assessed person, the last and the first hit assessment day.

    The first hit is the first day with a grade >= ``min_grade`` of ``term`` (NULL
    without one). Columns ``person_id``, last day, first hit day, over every
    person: callers add their selection of persons (and of days) with
    ``where``/``join``.
    """
    ids = list(term_concept_ids(term, casefold=casefold))
    grade = func.coalesce(Observation.value_as_number, 0)
    hit = Observation.observation_source_concept_id.in_(ids) & (grade >= min_grade)
    return (
        select(
            Observation.person_id,
            func.max(Observation.observation_date),
            func.min(case((hit, Observation.observation_date))),
        )
        .join(Concept, Concept.concept_id == Observation.observation_source_concept_id)
        .where(
            Observation.observation_type_concept_id == CASE_REPORT_FORM,
            Concept.vocabulary_id.startswith(_CTCAE),
        )
        .group_by(Observation.person_id)
    )


def assessment_spans(
    session: Session,
    persons: Select[Any],
    term: str,
    min_grade: int,
    *,
    casefold: bool = False,
) -> dict[int, tuple[date, date | None]]:
    """Return ``{person: (last assessment day, first day with a hit or None)}``.

    The per-person summary of :func:`assessment_days` (same rules), aggregated in
    the database (:func:`assessment_spans_query`): one row per assessed person in
    ``persons``.
    """
    query = assessment_spans_query(term, min_grade, casefold=casefold).where(
        Observation.person_id.in_(persons)
    )
    return {int(p): (last, first) for p, last, first in session.execute(query).all()}
