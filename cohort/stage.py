"""Overall cancer stage at enrolment: one MEASUREMENT per person, our stage concept.

The stage is the overall UICC/AJCC TNM stage group, recorded with consent
(:func:`cohort.consent.record_consent`) as ``0``, ``I``, ``II``, ``III`` or ``IV``,
optionally with the sub-group letters of the TNM stage grouping (``0is``, ``IA2``,
``IIIB``...). Following the OMOP oncology convention (a stage is a cancer modifier in
MEASUREMENT, pre-coordinated: the concept *is* the stage group) it is stored as:

- ``measurement_source_concept_id`` = our concept ``RTC Stage`` / group (``0``-``IV``;
  no verified Cancer Modifier concept id ships with the seed), so
  ``measurement_concept_id`` 0;
- ``measurement_source_value`` ``UICC/AJCC stage group``, ``value_source_value`` =
  the stage as given (``IIIA``), ``value_as_number`` and units empty;
- ``measurement_type_concept_id`` 32809 (case report form), ``measurement_date`` =
  the (shifted) date it was recorded; no ``measurement_event_id``: the disease
  EPISODE is created later, with the first RT course.

A person has at most one stage: recording again replaces it. Erasure removes it with
every row of the person (:mod:`cohort.erasure`). Other modules read the stages
through :func:`stages` (or join :func:`stage_query`); the bulk simulator builds the row
with :func:`stage_row`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import Subquery, delete, func, select
from sqlalchemy.orm import Session

from cohort.errors import InvalidInputError
from omop.cdm import Measurement
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import CASE_REPORT_FORM

__all__ = [
    "STAGE_GROUPS",
    "STAGE_VOCAB",
    "check_stage",
    "parse_stage",
    "record_stage",
    "stage_group",
    "stage_query",
    "stage_row",
    "stages",
]

STAGE_VOCAB = "RTC Stage"
#: The overall stage groups, lowest first (the level of the case-mix factor).
STAGE_GROUPS = ("0", "I", "II", "III", "IV")
_SOURCE_VALUE = "UICC/AJCC stage group"
# A group, then the sub-group of the TNM stage grouping: 0a / 0is, IA1, IIIC, IVB...
_STAGE = re.compile(r"^(?:(0)(?:A|IS)?|(IV|III|II|I)(?:[ABC][1-3]?)?)$")
_CHUNK = 2000


def parse_stage(value: str) -> tuple[str, str]:
    """Return ``(group, stage as given)`` of an overall stage such as ``IIIA``.

    Raises
    ------
    InvalidInputError
        The value is not a stage group (``0``, ``I``, ``II``, ``III``, ``IV``,
        optionally with sub-group letters).

    Examples
    --------
    >>> parse_stage(" iiia ")
    ('III', 'IIIA')
    >>> parse_stage("Stage IV")
    ('IV', 'IV')
    """
    given = str(value).strip().upper()
    given = given.removeprefix("STAGE").strip()
    match = _STAGE.fullmatch(given)
    if match is None:
        raise InvalidInputError(
            f"stage: {str(value)!r} is not an overall UICC/AJCC stage group; "
            f"allowed: {', '.join(STAGE_GROUPS)} (optionally with the sub-group, "
            "e.g. IIIA)"
        )
    return match.group(1) or match.group(2), given


def check_stage(stage: str | None, *, data_use: bool) -> None:
    """Refuse a malformed stage, or a stage given without a consent to data use.

    Raises
    ------
    InvalidInputError
        Naming the field ``stage`` (clinical data need the consent to data use).
    """
    if stage is None:
        return
    parse_stage(stage)
    if not data_use:
        raise InvalidInputError(
            "stage: recorded only with a consent to data use (state consented, "
            "scope data)"
        )


@cache
def _concepts() -> dict[int, str]:
    # Our concept ids never change once registered (omop.vocab.registry): built once.
    return {our_concept_id(STAGE_VOCAB, g): g for g in STAGE_GROUPS}


def stage_row(person_id: int, stage: str, day: datetime.date) -> dict[str, Any]:
    """Build the stage MEASUREMENT of a person (``stage`` as given, e.g. ``IIIA``)."""
    group, given = parse_stage(stage)
    return {
        "person_id": person_id,
        "measurement_concept_id": 0,
        "measurement_date": day,
        "measurement_type_concept_id": CASE_REPORT_FORM,
        "measurement_source_value": _SOURCE_VALUE,
        "measurement_source_concept_id": our_concept_id(STAGE_VOCAB, group),
        "value_source_value": given,
    }


def record_stage(
    session: Session, person_id: int, stage: str, day: datetime.date
) -> str:
    """Record (or replace) the person's overall stage; return its group.

    Raises
    ------
    InvalidInputError
        ``stage`` is not a stage group (:func:`parse_stage`).
    """
    row = stage_row(person_id, stage, day)
    session.execute(
        delete(Measurement).where(
            Measurement.person_id == person_id,
            Measurement.measurement_source_concept_id.in_(list(_concepts())),
        )
    )
    session.add(Measurement(**row))
    session.flush()
    return _concepts()[int(row["measurement_source_concept_id"])]


def stage_query() -> Subquery:
    """Return the recorded stages as a subquery ``(person_id, concept)``.

    One row per person with a stage (a person has one; were there two, the larger
    concept), for set-based readers that join it to their persons (the case-mix
    table); :func:`stage_group` names the concept.
    """
    return (
        select(
            Measurement.person_id.label("person_id"),
            func.max(Measurement.measurement_source_concept_id).label("concept"),
        )
        .where(Measurement.measurement_source_concept_id.in_(list(_concepts())))
        .group_by(Measurement.person_id)
        .subquery()
    )


def stage_group(concept_id: int) -> str:
    """Return the stage group (``0``-``IV``) of one of our stage concepts."""
    return _concepts()[int(concept_id)]


def stages(session: Session, persons: Iterable[int]) -> dict[int, str]:
    """Return ``{person_id: stage group}`` of the persons with a stage.

    One query per 2,000 persons.
    """
    wanted = sorted(set(persons))
    concepts = _concepts()
    out: dict[int, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        for person, concept in session.execute(
            select(Measurement.person_id, Measurement.measurement_source_concept_id)
            .where(
                Measurement.person_id.in_(wanted[start : start + _CHUNK]),
                Measurement.measurement_source_concept_id.in_(list(concepts)),
            )
            .order_by(Measurement.measurement_id)
        ):
            if concept is not None:
                out[int(person)] = concepts[int(concept)]
    return out
