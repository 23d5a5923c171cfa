"""The QLQ-C30 scale score summary (``prom_scale_score``), recomputed by its writers.

:class:`omop.summary_tables.PromScaleScore` holds per person, timepoint and scale
the number of scores, the highest score and the person's baseline score of the
scale. It is derived from the OMOP rows (SURVEY_CONDUCT and its scale score
MEASUREMENTs, field ``survey_conduct.survey_conduct_id``) and recomputed per person
by :func:`refresh_prom_summary`, which every writer of questionnaires calls after
writing a person's (:func:`instruments.store.store_prom`, new and corrected;
:func:`cohort.simulate.bulk_load.load_cohort_bulk`, per batch). Erasure deletes the
rows with the person.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, case, delete, func, insert, select, text
from sqlalchemy.orm import Session

from instruments.registry import get_instrument
from instruments.store.common import (
    SURVEY_FIELD,
    Persons,
    field_id,
    timepoint_codes,
    where_persons,
)
from omop.cdm import Measurement, SurveyConduct
from omop.summary_tables import PromScaleScore
from omop.vocab.registry import our_concept_id

__all__ = [
    "BASELINE",
    "INSTRUMENT",
    "refresh_prom_summary",
    "scale_concepts",
    "scale_score_rows",
    "summary_rows",
    "timepoint_expression",
]

INSTRUMENT = "QLQ-C30"
BASELINE = "baseline"


def timepoint_expression() -> Any:
    """Return the SQL timepoint of a survey: its timing concept's code, else value."""
    known = timepoint_codes()
    source = SurveyConduct.timing_source_value
    if not known:
        return source
    return case(known, value=func.coalesce(SurveyConduct.timing_concept_id, 0),
                else_=source)  # fmt: skip


def scale_concepts() -> dict[int, str]:
    """``concept id -> scale code`` of the instrument's scores (as the writer sets)."""
    codes = get_instrument(INSTRUMENT).spec.output_codes
    return {our_concept_id(INSTRUMENT, c): c for c in codes}


def scale_score_rows(session: Session) -> Select[Any]:
    """Select every QLQ-C30 scale score: ``person_id, timepoint, scale, score``.

    A score is a scale score MEASUREMENT (a QLQ-C30 scale concept, with a value) of a
    questionnaire (field ``survey_conduct.survey_conduct_id``) whose timepoint is
    known (:func:`timepoint_expression`); ``scale`` is its concept id. Add
    conditions, joins and columns for a reader (the summary, the trajectories).
    """
    timepoint = timepoint_expression()
    return (
        select(
            SurveyConduct.person_id.label("person_id"),
            timepoint.label("timepoint"),
            Measurement.measurement_source_concept_id.label("scale"),
            Measurement.value_as_number.label("score"),
        )
        .join(
            Measurement,
            Measurement.measurement_event_id == SurveyConduct.survey_conduct_id,
        )
        .where(
            Measurement.meas_event_field_concept_id == field_id(session, SURVEY_FIELD),
            Measurement.measurement_source_concept_id.in_(list(scale_concepts())),
            Measurement.value_as_number.is_not(None),
            timepoint.is_not(None),
        )
    )


def summary_rows(session: Session, conditions: list[Any]) -> Select[Any]:
    """Return the summary's rows computed from the OMOP rows (``conditions``: persons).

    Columns as :class:`~omop.summary_tables.PromScaleScore`, in its column order.
    """
    each = scale_score_rows(session).where(*conditions).subquery()
    scores = (
        select(
            each.c.person_id, each.c.timepoint, each.c.scale,
            func.count().label("n"), func.max(each.c.score).label("score"),
        )
        .group_by(each.c.person_id, each.c.timepoint, each.c.scale)
        .subquery()
    )  # fmt: skip
    baseline = func.max(case((scores.c.timepoint == BASELINE, scores.c.score))).over(
        partition_by=(scores.c.person_id, scores.c.scale)
    )
    return select(
        scores.c.person_id, scores.c.timepoint, scores.c.scale, scores.c.n,
        scores.c.score, baseline,
    )  # fmt: skip


#: The advisory lock space (first key) of the summary's per-person locks.
_PG_LOCK = 0x50524F4D  # "PROM"


def _lock_persons(session: Session, ids: list[int]) -> None:
    """PostgreSQL: hold the persons' summary until commit (ids in order: no deadlock).

    Two transactions storing questionnaires of one person would otherwise both delete
    the rows they see and insert the person's rows again: the second insert would
    meet the first's committed rows. Locked, the second waits, and its delete and
    insert then see the first's rows and questionnaires.
    """
    if not ids or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(:space, p)) "
            "FROM unnest(CAST(:ids AS integer[])) AS t(p)"
        ),
        {"space": _PG_LOCK, "ids": ids},
    )


def refresh_prom_summary(session: Session, persons: Persons) -> None:
    """Recompute the summary rows of ``persons`` from their questionnaires.

    Parameters
    ----------
    persons
        A SQL selection of person ids, ids, or None for every person.
    """
    columns = [c.name for c in PromScaleScore.__table__.columns]
    if persons is not None and not isinstance(persons, Select):
        _lock_persons(session, sorted(set(persons)))
    for survey_where, summary_where in zip(
        where_persons(SurveyConduct.person_id, persons),
        where_persons(PromScaleScore.person_id, persons),
        strict=True,
    ):
        session.execute(
            delete(PromScaleScore)
            .where(*summary_where)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            insert(PromScaleScore).from_select(
                columns, summary_rows(session, survey_where)
            )
        )
