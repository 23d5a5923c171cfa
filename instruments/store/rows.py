"""Row builders of the assessment conventions (toxicity and PROM).

:func:`~instruments.store.toxicity.store_toxicity` and
:func:`~instruments.store.prom.store_prom` write these rows one assessment at a time;
bulk writers (``rtcohort simulate --into-db``) build the same rows with the same
functions and load them with :mod:`omop.bulk`. Each builder returns plain column
mappings; the caller supplies the row ids it allocated.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np

from instruments.ctcae import CtcaeVersion
from instruments.fhir import PromResponse
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.registry import get_instrument
from instruments.scoring import InstrumentSpec, score_responses
from instruments.store.common import (
    NO_CONCEPT,
    TIMEPOINT_VOCAB,
    Assessment,
    StoreError,
    our_concept,
    visit_row,
)
from omop.vocab.standard import CASE_REPORT_FORM, PATIENT_FILLED_SURVEY

__all__ = [
    "ScoredProm",
    "prom_value_rows",
    "score_prom",
    "survey_row",
    "toxicity_condition_row",
    "toxicity_observation_row",
    "visit_row",
]

Row = dict[str, Any]


def toxicity_term_concept(grading: ToxicityGrading) -> tuple[str, int]:
    """Return (CTCAE version, term concept id) of a grading."""
    version = CtcaeVersion.parse(grading.version).value
    return version, our_concept(f"CTCAE v{version}", grading.meddra_code)


def toxicity_condition_row(
    grading: ToxicityGrading, where: Assessment, day: date
) -> Row:
    """CONDITION_OCCURRENCE of a grading of grade >= 1 (the adverse event)."""
    _, term = toxicity_term_concept(grading)
    return {
        "person_id": where.person_id,
        "condition_concept_id": NO_CONCEPT,
        "condition_start_date": day,
        "condition_type_concept_id": CASE_REPORT_FORM,
        "condition_source_value": grading.meddra_code,
        "condition_source_concept_id": term,
    }


def toxicity_observation_row(
    grading: ToxicityGrading,
    where: Assessment,
    day: date,
    *,
    condition_id: int | None,
    condition_field: int | None,
) -> Row:
    """Return the grade OBSERVATION (linked to its condition when grade >= 1)."""
    version, term = toxicity_term_concept(grading)
    return {
        "person_id": where.person_id,
        "observation_concept_id": NO_CONCEPT,
        "observation_date": day,
        "observation_type_concept_id": CASE_REPORT_FORM,
        "value_as_number": float(grading.grade),
        "value_as_concept_id": our_concept("CTCAE Grade", str(grading.grade)),
        "value_source_value": str(grading.grade),
        "qualifier_source_value": (
            str(grading.attribution) if grading.attribution else None
        ),
        "observation_source_value": f"CTCAE v{version} {grading.meddra_code}",
        "observation_source_concept_id": term,
        "observation_event_id": condition_id,
        "obs_event_field_concept_id": condition_field,
    }


class ScoredProm:
    """A validated questionnaire: its instrument, answers and scale scores."""

    def __init__(
        self, spec: InstrumentSpec, answers: dict[str, float], scores: list[Any]
    ) -> None:
        self.spec = spec
        self.answers = answers
        self.scores = scores


def score_prom(response: PromResponse) -> ScoredProm:
    """Validate and score a questionnaire.

    Raises
    ------
    StoreError
        Answers the instrument rejects, or no completion time.
    """
    spec = get_instrument(response.instrument).spec
    result = score_responses(spec, response.as_row())
    if not result.valid[0]:
        raise StoreError(f"{response.resource_id}: {result.errors[0]}")
    if response.authored is None:
        raise StoreError(f"{response.resource_id}: no completion time (authored)")
    answers = {f"q{n}": float(v) for n, v in response.values.items() if v is not None}
    scores = [
        (code, float(score))
        for code, score in zip(result.codes, np.asarray(result.scores[0]), strict=True)
        if not math.isnan(score)
    ]
    return ScoredProm(spec, answers, scores)


def survey_row(
    scored: ScoredProm,
    response: PromResponse,
    where: Assessment,
    *,
    day: date,
    moment: datetime,
    collection_method: str,
) -> Row:
    """SURVEY_CONDUCT of one completed questionnaire (without its visit)."""
    spec = scored.spec
    return {
        "person_id": where.person_id,
        "survey_concept_id": NO_CONCEPT,
        "survey_start_date": day,
        "survey_end_date": day,
        "survey_end_datetime": moment,
        "assisted_concept_id": NO_CONCEPT,
        "respondent_type_concept_id": NO_CONCEPT,
        "respondent_type_source_value": "patient",
        "timing_concept_id": our_concept(TIMEPOINT_VOCAB, where.timepoint),
        "timing_source_value": where.timepoint,
        "collection_method_concept_id": NO_CONCEPT,
        "collection_method_source_value": collection_method,
        "survey_source_value": f"EORTC {spec.code}",
        "survey_source_concept_id": our_concept(spec.code, spec.code),
        "survey_source_identifier": response.resource_id,
        "validated_survey_concept_id": NO_CONCEPT,
        "survey_version_number": spec.version,
    }


def prom_value_rows(
    scored: ScoredProm,
    where: Assessment,
    *,
    day: date,
    moment: datetime,
    survey_id: int,
    visit_id: int,
    field: int,
) -> tuple[list[Row], list[Row]]:
    """Return (answer OBSERVATIONs, score MEASUREMENTs) of a stored questionnaire."""
    code = scored.spec.code
    common = {"person_id": where.person_id, "visit_occurrence_id": visit_id}
    answers = [
        common
        | {
            "observation_concept_id": NO_CONCEPT,
            "observation_date": day,
            "observation_datetime": moment,
            "observation_type_concept_id": PATIENT_FILLED_SURVEY,
            "value_as_number": value,
            "observation_source_value": link_id,
            "observation_source_concept_id": our_concept(code, link_id),
            "observation_event_id": survey_id,
            "obs_event_field_concept_id": field,
        }
        for link_id, value in scored.answers.items()
    ]
    scores = [
        common
        | {
            "measurement_concept_id": NO_CONCEPT,
            "measurement_date": day,
            "measurement_datetime": moment,
            "measurement_type_concept_id": PATIENT_FILLED_SURVEY,
            "value_as_number": score,
            "measurement_source_value": scale,
            "measurement_source_concept_id": our_concept(code, scale),
            "measurement_event_id": survey_id,
            "meas_event_field_concept_id": field,
        }
        for scale, score in scored.scores
    ]
    return answers, scores
