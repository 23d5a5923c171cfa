"""CTCAE gradings: CONDITION_OCCURRENCE + grade OBSERVATION; and their readers.

See :mod:`instruments.store` for the convention.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from instruments.ctcae import CtcaeVersion, load_catalogue
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.store.common import (
    CONDITION_FIELD,
    Assessment,
    Persons,
    StoreOutcome,
    check_plausible_date,
    field_id,
    frame,
    our_concept,
    visit_for,
    where_persons,
)
from instruments.store.rows import toxicity_condition_row, toxicity_observation_row
from instruments.store.versions import (
    AssessmentKind,
    check_reason,
    record_correction,
    toxicity_key,
)
from omop.cdm import ConditionOccurrence, Observation, VisitOccurrence
from omop.observation_period import extend_observation_period
from omop.vocab.registry import load_registry
from omop.vocab.standard import CASE_REPORT_FORM

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = [
    "ToxicityDate",
    "read_toxicity",
    "read_toxicity_dates",
    "store_toxicity",
]


def store_toxicity(
    session: Session,
    where: Assessment,
    grading: ToxicityGrading,
    *,
    correction_reason: str | None = None,
    actor: str | None = None,
) -> tuple[int, StoreOutcome]:
    """Store one CTCAE grading; return the grade OBSERVATION id and the outcome.

    A grading is identified by person, CTCAE term and timepoint. Sent again with the
    same grade, attribution and date it is ``unchanged``; with others it is
    ``refused`` (nothing written) unless ``correction_reason`` is given, when it is
    stored as the new version and the earlier one moves from OMOP to the version
    history (``corrected``; :mod:`instruments.store.versions`). The web app's
    correction flow and ``toxicity import --correct`` both call this.

    Parameters
    ----------
    correction_reason
        Why a stored grading is corrected; ignored when nothing differs.
    actor
        Who corrects it (recorded with the version).

    Raises
    ------
    StoreError
        Unknown person or timepoint; an assessment date in the future, before the
        year of birth or after death; a blank correction reason.
    """
    reason = check_reason(correction_reason)
    version = CtcaeVersion.parse(grading.version)
    term_concept = our_concept(f"CTCAE v{version.value}", grading.meddra_code)
    check_plausible_date(session, where, grading.assessed_on, "assessed_on")
    day = where.shift(grading.assessed_on)
    attribution = str(grading.attribution) if grading.attribution else None
    existing = session.scalar(
        select(Observation)
        .join(
            VisitOccurrence,
            VisitOccurrence.visit_occurrence_id == Observation.visit_occurrence_id,
        )
        .where(
            Observation.person_id == where.person_id,
            Observation.observation_source_concept_id == term_concept,
            VisitOccurrence.visit_source_value == where.timepoint,
            Observation.observation_type_concept_id == CASE_REPORT_FORM,
        )
        .order_by(Observation.observation_id.desc())
        .limit(1)
    )
    if existing is not None:
        if (
            existing.value_as_number == grading.grade
            and existing.qualifier_source_value == attribution
            and existing.observation_date == day
        ):
            return int(existing.observation_id), StoreOutcome.UNCHANGED
        if reason is None:
            return int(existing.observation_id), StoreOutcome.REFUSED
    visit_id = visit_for(session, where, day)
    extend_observation_period(session, where.person_id, day)
    event_id: int | None = None
    field: int | None = None
    if grading.grade > 0:
        condition = ConditionOccurrence(
            **toxicity_condition_row(grading, where, day), visit_occurrence_id=visit_id
        )
        session.add(condition)
        session.flush()
        event_id = int(condition.condition_occurrence_id)
        field = field_id(session, CONDITION_FIELD)
    observation = Observation(
        **toxicity_observation_row(
            grading, where, day, condition_id=event_id, condition_field=field
        ),
        visit_occurrence_id=visit_id,
    )
    session.add(observation)
    session.flush()
    if existing is None:
        return int(observation.observation_id), StoreOutcome.STORED
    record_correction(
        session,
        AssessmentKind.TOXICITY,
        person_id=where.person_id,
        key=toxicity_key(version.value, grading.meddra_code, where.timepoint),
        old_row=int(existing.observation_id),
        old_condition=existing.observation_event_id,
        new_row=int(observation.observation_id),
        new_condition=event_id,
        reason=str(reason),
        actor=actor,
    )
    return int(observation.observation_id), StoreOutcome.CORRECTED


def read_toxicity(
    session: Session, person_ids: Iterable[int] | None = None
) -> pd.DataFrame:
    """Return one row per stored CTCAE grading.

    Columns: ``person_id, timepoint, assessed_on, ctcae_version, term, meddra_code,
    grade, attribution, condition_occurrence_id`` (dates as stored, i.e. shifted).
    """
    by_id = {v: k for k, v in load_registry().items()}
    query = (
        select(Observation, VisitOccurrence.visit_source_value)
        .join(
            VisitOccurrence,
            VisitOccurrence.visit_occurrence_id == Observation.visit_occurrence_id,
            isouter=True,
        )
        .where(Observation.observation_type_concept_id == CASE_REPORT_FORM)
    )
    if person_ids is not None:
        query = query.where(Observation.person_id.in_(list(person_ids)))
    rows = []
    for obs, timepoint in session.execute(query.order_by(Observation.observation_id)):
        vocabulary, code = by_id.get(obs.observation_source_concept_id or -1, ("", ""))
        if not vocabulary.startswith("CTCAE v"):
            continue
        version = vocabulary.removeprefix("CTCAE v")
        rows.append(
            {
                "person_id": obs.person_id,
                "timepoint": timepoint,
                "assessed_on": obs.observation_date,
                "ctcae_version": version,
                "term": load_catalogue(version).term(code).term,
                "meddra_code": code,
                "grade": int(obs.value_as_number or 0),
                "attribution": obs.qualifier_source_value,
                "condition_occurrence_id": obs.observation_event_id,
            }
        )
    columns = [
        "person_id",
        "timepoint",
        "assessed_on",
        "ctcae_version",
        "term",
        "meddra_code",
        "grade",
        "attribution",
        "condition_occurrence_id",
    ]
    return frame(rows, columns)


class ToxicityDate(NamedTuple):
    """The date (shifted) of one stored CTCAE grading."""

    person_id: int
    assessed_on: date


def read_toxicity_dates(
    session: Session, persons: Persons = None
) -> list[ToxicityDate]:
    """Return the assessment date of every stored CTCAE grading (grade 0 included).

    ``persons`` as in :func:`read_survey_timings`. The grade OBSERVATION of type
    Case Report Form marks an assessment; :func:`read_toxicity` gives the grades.
    """
    out: list[ToxicityDate] = []
    for where in where_persons(Observation.person_id, persons):
        rows = session.execute(
            select(Observation.person_id, Observation.observation_date).where(
                Observation.observation_type_concept_id == CASE_REPORT_FORM,
                *where,
            )
        )
        out += [ToxicityDate(int(p), day) for p, day in rows.all()]
    return out
