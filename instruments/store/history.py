"""The version history of one assessment: the current version and the corrected ones.

The current version is read from the OMOP tables, earlier ones from their snapshots in
``assessment_version`` (:mod:`instruments.store.versions`); both come back in the same
shape, so the versions compare field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from instruments.store.common import StoreError, our_concept
from instruments.store.versions import (
    AssessmentKind,
    Rows,
    decode_rows,
    version_rows,
)
from omop.assessment_tables import AssessmentVersion
from omop.cdm import Observation, SurveyConduct, VisitOccurrence
from omop.vocab.standard import CASE_REPORT_FORM

__all__ = ["AssessmentRecord", "assessment_history"]

#: The parts of a toxicity ``assessment_key``.
KEY_PARTS = ("CTCAE v<version>", "<MedDRA code>", "<timepoint>")


@dataclass(frozen=True)
class AssessmentRecord:
    """One version of an assessment.

    Attributes
    ----------
    version
        1 = the original.
    current
        True for the version in the OMOP tables.
    reason, actor, recorded_at
        Of the correction that made this version (empty for version 1).
    rows
        Its OMOP rows, ``{table: [{column: value}, ...]}`` (dates as ``date`` and
        ``datetime``), as :func:`~instruments.store.versions.version_rows` returns.
    values
        The content, read from ``rows``. PROM: ``timepoint``, ``completed_at``,
        ``answers`` (``{"q1": 1.0, ...}``) and ``scores`` (``{"PF2": ...}``);
        toxicity: ``grade``, ``attribution`` and ``assessed_on`` (shifted dates).
    """

    version: int
    current: bool
    reason: str | None
    actor: str | None
    recorded_at: datetime | None
    rows: Rows
    values: dict[str, Any] = field(default_factory=dict)


def _values(kind: AssessmentKind, rows: Rows) -> dict[str, Any]:
    if kind is AssessmentKind.PROM:
        survey = rows["survey_conduct"][0]
        return {
            "timepoint": survey["timing_source_value"],
            "completed_at": survey["survey_end_datetime"],
            "answers": {
                r["observation_source_value"]: r["value_as_number"]
                for r in rows.get("observation", [])
            },
            "scores": {
                r["measurement_source_value"]: r["value_as_number"]
                for r in rows.get("measurement", [])
            },
        }
    grade = rows["observation"][0]
    assessed_on: date = grade["observation_date"]
    return {
        "grade": int(grade["value_as_number"]),
        "attribution": grade["qualifier_source_value"],
        "assessed_on": assessed_on,
    }


def _current_row(
    session: Session, kind: AssessmentKind, person_id: int, key: str
) -> int | None:
    """Return the OMOP row of the current version of ``key`` (None: not stored)."""
    if kind is AssessmentKind.PROM:
        found = session.scalar(
            select(SurveyConduct.survey_conduct_id)
            .where(
                SurveyConduct.person_id == person_id,
                SurveyConduct.survey_source_identifier == key,
            )
            .order_by(SurveyConduct.survey_conduct_id.desc())
            .limit(1)
        )
        return None if found is None else int(found)
    parts = key.rsplit(" ", 2)
    if len(parts) != len(KEY_PARTS) or not parts[0].startswith("CTCAE v"):
        raise StoreError(f"toxicity key {key!r}: expected '{' '.join(KEY_PARTS)}'")
    vocabulary, code, timepoint = parts
    found = session.scalar(
        select(Observation.observation_id)
        .join(
            VisitOccurrence,
            VisitOccurrence.visit_occurrence_id == Observation.visit_occurrence_id,
        )
        .where(
            Observation.person_id == person_id,
            Observation.observation_source_concept_id == our_concept(vocabulary, code),
            VisitOccurrence.visit_source_value == timepoint,
            Observation.observation_type_concept_id == CASE_REPORT_FORM,
        )
        .order_by(Observation.observation_id.desc())
        .limit(1)
    )
    return None if found is None else int(found)


def assessment_history(
    session: Session, person_id: int, kind: AssessmentKind | str, key: str
) -> list[AssessmentRecord]:
    """Return every version of one assessment, oldest first (empty: never stored).

    Parameters
    ----------
    person_id
        The PERSON.
    kind
        ``prom`` or ``toxicity``.
    key
        PROM: the questionnaire id (FHIR resource id); toxicity:
        :func:`~instruments.store.versions.toxicity_key` of the CTCAE version, MedDRA
        code and timepoint (``CTCAE v5.0 10013781 m3``).

    Examples
    --------
    >>> [(v.version, v.reason, v.values["grade"])
    ...  for v in assessment_history(session, pid, "toxicity", key)]  # doctest: +SKIP
    [(1, None, 2), (2, 're-examined', 3)]
    """
    kind = AssessmentKind(kind)
    versions = session.scalars(
        select(AssessmentVersion)
        .where(
            AssessmentVersion.kind == kind.value,
            AssessmentVersion.person_id == person_id,
            AssessmentVersion.assessment_key == key,
        )
        .order_by(AssessmentVersion.version)
    ).all()
    out = []
    for old in versions:
        if old.snapshot is not None:
            rows = decode_rows(old.snapshot)
            out.append(
                AssessmentRecord(
                    old.version,
                    False,
                    old.reason,
                    old.actor,
                    old.recorded_at,
                    rows,
                    _values(kind, rows),
                )
            )
    row_id = _current_row(session, kind, person_id, key)
    if row_id is not None:
        rows = version_rows(session, kind, person_id, row_id)
        latest = next((v for v in versions if v.snapshot is None), None)
        out.append(
            AssessmentRecord(
                latest.version if latest else 1,
                True,
                latest.reason if latest else None,
                latest.actor if latest else None,
                latest.recorded_at if latest else None,
                rows,
                _values(kind, rows),
            )
        )
    return out
