"""Concept lookups used when writing OMOP rows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from omop.cdm import Concept
from omop.errors import RTCohortError

__all__ = ["field_concept_id", "standard_concept_id"]


def field_concept_id(session: Session, field: str) -> int:
    """Return the CDM field concept named ``table.column``.

    Looks the name up in the loaded vocabulary (``vocabulary_id='CDM'``,
    ``concept_class_id='Field'``), preferring an Athena concept to our own seed concept.

    Raises
    ------
    RTCohortError
        When no concept of that name exists (run ``rtcohort db upgrade``).
    """
    ids = session.scalars(
        select(Concept.concept_id)
        .where(
            Concept.vocabulary_id == "CDM",
            Concept.concept_class_id == "Field",
            Concept.concept_name == field,
        )
        .order_by(Concept.concept_id)
    ).all()
    if not ids:
        raise RTCohortError(f"no CDM field concept named {field!r}; run db upgrade")
    return ids[0]


def standard_concept_id(session: Session, vocabulary_id: str, concept_code: str) -> int:
    """Return a standard concept's id by code, or 0 when the vocabulary lacks it."""
    found = session.scalar(
        select(Concept.concept_id).where(
            Concept.vocabulary_id == vocabulary_id,
            Concept.concept_code == concept_code,
            Concept.standard_concept == "S",
        )
    )
    return int(found) if found is not None else 0
