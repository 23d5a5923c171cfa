"""Corrections, not overwrites: versions of a PROM or CTCAE grading.

A re-sent assessment that differs from the stored one is refused unless a reason is
given; with a reason its new rows are written beside the old ones and the platform
table ``assessment_version`` (:class:`omop.assessment_tables.AssessmentVersion`) links
the versions, marking the earlier one superseded. :func:`superseded_rows` is the SQL
selection every reader of :mod:`instruments.store` leaves out, so readers return the
current version only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from instruments.store.common import StoreError
from omop.assessment_tables import AssessmentVersion

__all__ = [
    "REASON_MAX_CHARS",
    "AssessmentKind",
    "check_reason",
    "record_correction",
    "superseded_rows",
]

#: Longest correction reason accepted (the audit trail shows it; keep it a sentence).
REASON_MAX_CHARS = 500


class AssessmentKind(StrEnum):
    """Which convention a version row belongs to."""

    PROM = "prom"
    TOXICITY = "toxicity"


def superseded_rows(kind: AssessmentKind) -> Select[Any]:
    """Return the SQL selection of OMOP row ids of superseded versions of ``kind``.

    PROM: SURVEY_CONDUCT ids; toxicity: grade OBSERVATION ids.
    """
    return select(AssessmentVersion.row_id).where(
        AssessmentVersion.kind == kind.value,
        AssessmentVersion.superseded_by.is_not(None),
    )


def check_reason(reason: str | None) -> str | None:
    """Return the reason stripped; StoreError if blank or too long.

    Examples
    --------
    >>> check_reason("  transcription error ")
    'transcription error'
    >>> check_reason(None) is None
    True
    """
    if reason is None:
        return None
    text = reason.strip()
    if not text:
        raise StoreError("a correction needs a reason (--correct REASON)")
    if len(text) > REASON_MAX_CHARS:
        raise StoreError(f"correction reason: at most {REASON_MAX_CHARS} characters")
    return text


def record_correction(
    session: Session,
    kind: AssessmentKind,
    *,
    person_id: int,
    key: str,
    old_row: int,
    old_condition: int | None,
    new_row: int,
    new_condition: int | None,
    reason: str,
    actor: str | None,
    now: datetime | None = None,
) -> int:
    """Link the new rows as the next version of the assessment; return its number.

    The version holding ``old_row`` (version 1 if the assessment was never corrected)
    is marked superseded by the new one.
    """
    current = session.scalar(
        select(AssessmentVersion).where(
            AssessmentVersion.kind == kind.value, AssessmentVersion.row_id == old_row
        )
    )
    if current is None:
        current = AssessmentVersion(
            kind=kind.value,
            person_id=person_id,
            assessment_key=key,
            version=1,
            row_id=old_row,
            condition_occurrence_id=old_condition,
        )
        session.add(current)
    new = AssessmentVersion(
        kind=kind.value,
        person_id=person_id,
        assessment_key=key,
        version=current.version + 1,
        row_id=new_row,
        condition_occurrence_id=new_condition,
        reason=reason,
        actor=actor,
        recorded_at=now or datetime.now(UTC),
    )
    session.add(new)
    session.flush()
    current.superseded_by = new.version_id
    session.flush()
    return new.version
