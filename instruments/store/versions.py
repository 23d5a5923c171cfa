"""Corrections, not overwrites: versions of a PROM or CTCAE grading.

The OMOP clinical tables hold the current version of each assessment only (every
OHDSI tool reads them directly). A re-sent assessment that differs from the stored
one is refused unless a reason is given; with a reason its new rows are written, the
earlier version's rows are removed from OMOP and kept as a snapshot in the platform
table ``assessment_version`` (:class:`omop.assessment_tables.AssessmentVersion`) with
the reason, actor, time and version number. :func:`instruments.store.history.
assessment_history` reads the versions back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, Table, delete, select
from sqlalchemy.orm import Session

from instruments.store.common import (
    CONDITION_FIELD,
    SURVEY_FIELD,
    StoreError,
    field_id,
)
from omop.assessment_tables import AssessmentVersion
from omop.base import Base

__all__ = [
    "REASON_MAX_CHARS",
    "AssessmentKind",
    "Rows",
    "check_reason",
    "decode_rows",
    "encode_rows",
    "record_correction",
    "toxicity_key",
    "version_rows",
]

#: Longest correction reason accepted (the audit trail shows it; keep it a sentence).
REASON_MAX_CHARS = 500

#: The OMOP rows of one version: ``{table name: [{column: value}, ...]}``.
Rows = dict[str, list[dict[str, Any]]]


class AssessmentKind(StrEnum):
    """Which convention a version row belongs to."""

    PROM = "prom"
    TOXICITY = "toxicity"


def toxicity_key(ctcae_version: str, meddra_code: str, timepoint: str) -> str:
    """Return the ``assessment_key`` of a CTCAE grading.

    Examples
    --------
    >>> toxicity_key("5.0", "10013781", "m3")
    'CTCAE v5.0 10013781 m3'
    """
    return f"CTCAE v{ctcae_version} {meddra_code} {timepoint}"


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


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _selections(
    session: Session, kind: AssessmentKind, person_id: int, row_id: int
) -> dict[str, Select[Any]]:
    """Return the SQL selection of each table's rows of one version."""
    if kind is AssessmentKind.PROM:
        survey, obs, meas = (
            _table(n) for n in ("survey_conduct", "observation", "measurement")
        )
        field = field_id(session, SURVEY_FIELD)
        return {
            "survey_conduct": select(survey).where(
                survey.c.survey_conduct_id == row_id, survey.c.person_id == person_id
            ),
            "observation": select(obs).where(
                obs.c.observation_event_id == row_id,
                obs.c.obs_event_field_concept_id == field,
                obs.c.person_id == person_id,
            ),
            "measurement": select(meas).where(
                meas.c.measurement_event_id == row_id,
                meas.c.meas_event_field_concept_id == field,
                meas.c.person_id == person_id,
            ),
        }
    obs, condition = _table("observation"), _table("condition_occurrence")
    grade = select(obs.c.observation_event_id).where(
        obs.c.observation_id == row_id,
        obs.c.person_id == person_id,
        obs.c.obs_event_field_concept_id == field_id(session, CONDITION_FIELD),
    )
    return {
        "condition_occurrence": select(condition).where(
            condition.c.condition_occurrence_id.in_(grade.scalar_subquery()),
            condition.c.person_id == person_id,
        ),
        "observation": select(obs).where(
            obs.c.observation_id == row_id, obs.c.person_id == person_id
        ),
    }


def version_rows(
    session: Session, kind: AssessmentKind, person_id: int, row_id: int
) -> Rows:
    """Return every OMOP row of the version held in ``row_id``, per table.

    PROM: the SURVEY_CONDUCT row, its answer OBSERVATIONs and score MEASUREMENTs;
    toxicity: the grade OBSERVATION and its CONDITION_OCCURRENCE (grade >= 1). Rows
    in primary-key order; tables without rows are left out.
    """
    out: Rows = {}
    for name, query in _selections(session, kind, person_id, row_id).items():
        pk = next(iter(_table(name).primary_key.columns))
        rows = [dict(r) for r in session.execute(query.order_by(pk)).mappings()]
        if rows:
            out[name] = rows
    return out


def encode_rows(rows: Rows) -> Rows:
    """Return ``rows`` as JSON values (dates and times as ISO 8601 text)."""

    def value(v: Any) -> Any:
        return v.isoformat() if isinstance(v, date) else v  # datetime is a date

    return {
        name: [{c: value(v) for c, v in record.items()} for record in records]
        for name, records in rows.items()
    }


def decode_rows(rows: Rows) -> Rows:
    """Inverse of :func:`encode_rows`: dates and times back by the column types."""
    out: Rows = {}
    for name, records in rows.items():
        table = _table(name)
        kinds = {c.name: c.type.python_type for c in table.columns}
        decoded = []
        for record in records:
            row = dict(record)
            for column, text in record.items():
                if isinstance(text, str) and kinds.get(column) in (date, datetime):
                    row[column] = kinds[column].fromisoformat(text)
            decoded.append(row)
        out[name] = decoded
    return out


def _remove(session: Session, rows: Rows) -> None:
    """Delete ``rows`` from OMOP (ORM delete: the session forgets the objects)."""
    mapped = {
        m.local_table.name: m.class_
        for m in Base.registry.mappers
        if isinstance(m.local_table, Table)
    }
    for name, records in rows.items():
        pk = next(iter(_table(name).primary_key.columns))
        ids = [r[pk.name] for r in records]
        entity = mapped[name]
        session.execute(delete(entity).where(getattr(entity, pk.name).in_(ids)))


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
    """Make the new rows the current version; move the earlier one out of OMOP.

    The earlier version's rows (:func:`version_rows` of ``old_row``) are deleted from
    the OMOP tables and kept as the ``snapshot`` of its ``assessment_version`` row
    (created as version 1 if the assessment was never corrected), which is marked
    superseded by the new version. Returns the new version number.

    Raises
    ------
    StoreError
        When ``old_row`` is not the current version recorded for ``key``.
    """
    current = session.scalar(
        select(AssessmentVersion).where(
            AssessmentVersion.kind == kind.value,
            AssessmentVersion.person_id == person_id,
            AssessmentVersion.assessment_key == key,
            AssessmentVersion.superseded_by.is_(None),
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
    elif current.row_id != old_row:
        raise StoreError(
            f"{kind.value} {key}: row {old_row} is not the current version"
            f" (row {current.row_id})"
        )
    rows = version_rows(session, kind, person_id, old_row)
    current.snapshot = encode_rows(rows)
    _remove(session, rows)
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
