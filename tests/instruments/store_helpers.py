"""Rows and responses shared by the PROM store tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from instruments.fhir import PromResponse, SubjectIdentifier
from omop import cdm


def add_person(session: Session, source: str) -> int:
    """Add a PERSON with ``source`` as its source value; return its id."""
    person = cdm.Person(
        gender_concept_id=8532, year_of_birth=1960, race_concept_id=0,
        ethnicity_concept_id=0, person_source_value=source,
    )  # fmt: skip
    session.add(person)
    session.flush()
    return int(person.person_id)


def qlq_response(
    rid: str, subject: SubjectIdentifier, authored: datetime, **values: int | None
) -> PromResponse:
    """A QLQ-C30 response: items 1-28 answered 1, 29-30 answered 7, ``qN=`` overrides."""
    answers: dict[int, int | None] = dict.fromkeys(range(1, 31), 1)
    answers[29] = answers[30] = 7
    answers.update({int(k[1:]): v for k, v in values.items()})
    return PromResponse(
        resource_id=rid, instrument="QLQ-C30", subject=subject, authored=authored,
        values=answers,
    )  # fmt: skip
