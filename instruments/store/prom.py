"""PROM rows: one SURVEY_CONDUCT per questionnaire, answers and scores; and readers.

See :mod:`instruments.store` for the convention.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from instruments.fhir import PromResponse
from instruments.registry import get_instrument
from instruments.store.common import (
    SURVEY_FIELD,
    Assessment,
    Persons,
    StoreOutcome,
    check_plausible_date,
    field_id,
    frame,
    our_concept,
    timepoint_code,
    visit_for,
    where_persons,
)
from instruments.store.prom_summary import refresh_prom_summary
from instruments.store.rows import prom_value_rows, score_prom, survey_row
from instruments.store.versions import AssessmentKind, check_reason, record_correction
from omop.cdm import Measurement, Observation, SurveyConduct
from omop.observation_period import extend_observation_period
from omop.vocab.standard import PATIENT_FILLED_SURVEY

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = [
    "SurveyTiming",
    "read_latest_scores",
    "read_prom_answers",
    "read_prom_scores",
    "read_survey_timings",
    "store_prom",
]


def store_prom(
    session: Session,
    where: Assessment,
    response: PromResponse,
    *,
    collection_method: str = "FHIR",
    correction_reason: str | None = None,
    actor: str | None = None,
) -> tuple[int, StoreOutcome]:
    """Store one completed questionnaire: SURVEY_CONDUCT, answers, scores.

    A questionnaire is identified by the person and its key (the FHIR resource id).
    Sent again with the same answers, timepoint and completion time it is
    ``unchanged``; with others it is ``refused`` (nothing written) unless
    ``correction_reason`` is given, when it is stored as the new version and the
    earlier one moves from OMOP to the version history (``corrected``;
    :mod:`instruments.store.versions`).

    Parameters
    ----------
    correction_reason
        Why a stored questionnaire is corrected (the web app's correction flow and
        ``prom import --correct``); ignored when nothing differs.
    actor
        Who corrects it (recorded with the version).

    Returns
    -------
    survey_conduct_id, outcome
        The current row and what storing did (:class:`StoreOutcome`).

    Raises
    ------
    StoreError
        Unknown person or timepoint, no completion time, a completion date in the
        future, before the year of birth or after death, answers the instrument
        rejects, or a blank correction reason.
    """
    reason = check_reason(correction_reason)
    scored = score_prom(response)
    assert response.authored is not None
    moment = where.shift_datetime(response.authored)  # naive UTC
    authored = response.authored
    # The date is the patient's local date as sent, not the UTC date.
    received = authored.date() if isinstance(authored, datetime) else authored
    check_plausible_date(session, where, received, "authored")
    day = where.shift(received)
    existing = session.scalar(
        select(SurveyConduct).where(
            SurveyConduct.person_id == where.person_id,
            SurveyConduct.survey_source_identifier == response.resource_id,
        )
    )
    row = survey_row(
        scored, response, where, day=day, moment=moment,
        collection_method=collection_method,
    )  # fmt: skip
    if existing is not None:
        if (
            _stored_answers(session, existing.survey_conduct_id) == scored.answers
            and existing.timing_source_value == where.timepoint
            and existing.timing_concept_id == row["timing_concept_id"]
            and existing.survey_end_datetime == moment
            and existing.survey_source_concept_id == row["survey_source_concept_id"]
        ):
            return int(existing.survey_conduct_id), StoreOutcome.UNCHANGED
        if reason is None:
            return int(existing.survey_conduct_id), StoreOutcome.REFUSED
    visit_id = visit_for(session, where, day)
    extend_observation_period(session, where.person_id, day)
    survey = SurveyConduct(**row, visit_occurrence_id=visit_id)
    session.add(survey)
    session.flush()
    # Core executemany: one statement for the answers, one for the scores.
    answers, scores = prom_value_rows(
        scored, where, day=day, moment=moment, survey_id=survey.survey_conduct_id,
        visit_id=visit_id, field=field_id(session, SURVEY_FIELD),
    )  # fmt: skip
    if answers:
        session.execute(insert(Observation), answers)
    if scores:
        session.execute(insert(Measurement), scores)
    session.flush()
    if existing is None:
        refresh_prom_summary(session, [where.person_id])
        return int(survey.survey_conduct_id), StoreOutcome.STORED
    record_correction(
        session,
        AssessmentKind.PROM,
        person_id=where.person_id,
        key=response.resource_id,
        old_row=int(existing.survey_conduct_id),
        old_condition=None,
        new_row=int(survey.survey_conduct_id),
        new_condition=None,
        reason=str(reason),
        actor=actor,
    )
    refresh_prom_summary(session, [where.person_id])  # after the old rows left
    return int(survey.survey_conduct_id), StoreOutcome.CORRECTED


def _stored_answers(session: Session, survey_id: int) -> dict[str, float]:
    rows = session.execute(
        select(Observation.observation_source_value, Observation.value_as_number).where(
            Observation.observation_event_id == survey_id,
            Observation.observation_type_concept_id == PATIENT_FILLED_SURVEY,
        )
    ).all()
    return {str(k): float(v) for k, v in rows if v is not None}


def read_prom_scores(
    session: Session, person_ids: Iterable[int] | None = None
) -> pd.DataFrame:
    """Return one row per stored questionnaire with its scores (NaN if not scorable).

    Columns: ``person_id, survey_conduct_id, timepoint, completed_on, key, instrument``
    and the score codes of the instrument (QLQ-C30: ``QL2`` ... ``SUMMARY``).
    """
    spec = get_instrument("QLQ-C30").spec
    query = select(SurveyConduct)
    if person_ids is not None:
        query = query.where(SurveyConduct.person_id.in_(list(person_ids)))
    surveys = session.scalars(query.order_by(SurveyConduct.survey_conduct_id)).all()
    field = field_id(session, SURVEY_FIELD) if surveys else 0
    rows = []
    for survey in surveys:
        scores = dict.fromkeys(spec.output_codes, math.nan)
        for code, value in session.execute(
            select(
                Measurement.measurement_source_value, Measurement.value_as_number
            ).where(
                Measurement.measurement_event_id == survey.survey_conduct_id,
                Measurement.meas_event_field_concept_id == field,
            )
        ).all():
            if value is not None:
                scores[str(code)] = float(value)
        rows.append(
            {
                "person_id": survey.person_id,
                "survey_conduct_id": survey.survey_conduct_id,
                "timepoint": timepoint_code(
                    survey.timing_concept_id, survey.timing_source_value
                ),
                "completed_on": survey.survey_end_date,
                "key": survey.survey_source_identifier,
                "instrument": (survey.survey_source_value or "").removeprefix("EORTC "),
                **scores,
            }
        )
    columns = ["person_id", "survey_conduct_id", "timepoint", "completed_on", "key"]
    return frame(rows, [*columns, "instrument", *spec.output_codes])


def read_prom_answers(
    session: Session, person_ids: Iterable[int] | None = None
) -> pd.DataFrame:
    """Return one row per stored answer.

    Columns: ``person_id, survey_conduct_id, item, value``.
    """
    query = select(
        Observation.person_id,
        Observation.observation_event_id,
        Observation.observation_source_value,
        Observation.value_as_number,
    ).where(
        Observation.observation_type_concept_id == PATIENT_FILLED_SURVEY,
        Observation.obs_event_field_concept_id == field_id(session, SURVEY_FIELD),
    )
    if person_ids is not None:
        query = query.where(Observation.person_id.in_(list(person_ids)))
    rows = [
        {"person_id": p, "survey_conduct_id": s, "item": i, "value": v}
        for p, s, i, v in session.execute(query.order_by(Observation.observation_id))
    ]
    return frame(rows, ["person_id", "survey_conduct_id", "item", "value"])


class SurveyTiming(NamedTuple):
    """When a stored questionnaire was completed, and for which timepoint."""

    person_id: int
    timepoint: str | None
    completed_at: datetime | None  # naive UTC, shifted by the date offset


def read_survey_timings(
    session: Session, persons: Persons = None
) -> list[SurveyTiming]:
    """Return the timepoint and completion time of every stored questionnaire.

    Parameters
    ----------
    persons
        A SQL selection of person ids (one query, set-based), a collection of ids, or
        None for everyone.

    Examples
    --------
    >>> read_survey_timings(session, [person_id])  # doctest: +SKIP
    [SurveyTiming(person_id=1, timepoint='m3', completed_at=datetime(...))]
    """
    out: list[SurveyTiming] = []
    for where in where_persons(SurveyConduct.person_id, persons):
        rows = session.execute(
            select(
                SurveyConduct.person_id,
                SurveyConduct.timing_concept_id,
                SurveyConduct.timing_source_value,
                SurveyConduct.survey_end_datetime,
            ).where(*where)
        )
        out += [
            SurveyTiming(int(pid), timepoint_code(c, s), end)
            for pid, c, s, end in rows.all()
        ]
    return out


def read_latest_scores(
    session: Session, persons: Persons, code: str, *, instrument: str = "QLQ-C30"
) -> dict[tuple[int, str], float]:
    """Return one score per (person, timepoint); the last completed questionnaire wins.

    Parameters
    ----------
    persons
        As in :func:`read_survey_timings`.
    code
        Score code of the instrument (QLQ-C30: ``QL2``, ``PF2``, ..., ``SUMMARY``).
    instrument
        Instrument code.

    Returns
    -------
    dict
        ``{(person_id, timepoint): score}``; unscorable scales are absent.
    """
    field = field_id(session, SURVEY_FIELD)
    concept = our_concept(instrument, code)
    latest: dict[tuple[int, str], float] = {}
    for where in where_persons(SurveyConduct.person_id, persons):
        query = (
            select(
                SurveyConduct.person_id,
                SurveyConduct.timing_concept_id,
                SurveyConduct.timing_source_value,
                Measurement.value_as_number,
            )
            .join(
                Measurement,
                (Measurement.measurement_event_id == SurveyConduct.survey_conduct_id)
                & (Measurement.meas_event_field_concept_id == field)
                & (Measurement.measurement_source_concept_id == concept),
            )
            .where(
                SurveyConduct.survey_source_concept_id
                == our_concept(instrument, instrument),
                Measurement.value_as_number.is_not(None),
                *where,
            )
            .order_by(
                SurveyConduct.survey_end_date,
                SurveyConduct.survey_end_datetime,
                SurveyConduct.survey_conduct_id,
            )
        )
        for pid, timing, source, value in session.execute(query):
            timepoint = timepoint_code(timing, source)
            if value is not None and timepoint is not None:
                latest[(int(pid), timepoint)] = float(value)
    return latest
