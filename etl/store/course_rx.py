"""The prescription MEASUREMENTs of an RT course EPISODE, from values.

Written for each plan's course by :func:`etl.store.course.write_prescription` and
for a course of several plans (:mod:`etl.store.course_episode`) from its plans'
prescriptions: MEASUREMENTs (total dose, fractions, dose per fraction, intent) with
``measurement_event_id`` = the episode and the field concept ``episode.episode_id``,
their source concepts in our vocabulary ``RTC Prescription``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from omop.cdm import Measurement
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import EHR

__all__ = [
    "PRESCRIPTION_VOCAB",
    "Prescription",
    "prescription_value_rows",
    "read_prescriptions",
    "write_prescription_values",
]

PRESCRIPTION_VOCAB = "RTC Prescription"


class Prescription(NamedTuple):
    """The prescription of an RT course (None: unknown, not written)."""

    total_gy: float | None
    fractions: int | None
    per_fraction_gy: float | None
    intent: str | None


def write_prescription_values(
    session: Session,
    person_id: int,
    episode_id: int,
    day: datetime.date,
    rx: Prescription,
) -> None:
    """Write (replace) the prescription MEASUREMENTs of an EPISODE from values."""
    field_id = field_concept_id(session, "episode.episode_id")
    codes = ("total_dose", "fractions", "dose_per_fraction", "intent")
    concepts = [our_concept_id(PRESCRIPTION_VOCAB, c) for c in codes]
    session.execute(
        delete(Measurement).where(
            Measurement.measurement_event_id == episode_id,
            Measurement.meas_event_field_concept_id == field_id,
            Measurement.measurement_source_concept_id.in_(concepts),
        )
    )
    for row in prescription_value_rows(person_id, episode_id, day, rx, field_id):
        session.add(Measurement(**row))


def prescription_value_rows(
    person_id: int,
    episode_id: int,
    day: datetime.date,
    rx: Prescription,
    field_id: int,
) -> list[dict[str, Any]]:
    """Build the prescription MEASUREMENT rows of an EPISODE (``field_id``: episode)."""
    n = rx.fractions
    values: list[tuple[str, float | None, str | None, str | None]] = [
        ("total_dose", rx.total_gy, "Gy", None),
        ("fractions", float(n) if n else None, None, None),
        ("dose_per_fraction", rx.per_fraction_gy, "Gy", None),
        ("intent", None, None, rx.intent),
    ]
    return [
        {
            "person_id": person_id,
            "measurement_concept_id": 0,
            "measurement_date": day,
            "measurement_type_concept_id": EHR,
            "value_as_number": value,
            "unit_concept_id": 0 if unit_text else None,
            "unit_source_value": unit_text,
            "measurement_source_value": f"prescription {code}",
            "measurement_source_concept_id": our_concept_id(PRESCRIPTION_VOCAB, code),
            "value_source_value": value_text,
            "measurement_event_id": episode_id,
            "meas_event_field_concept_id": field_id,
        }
        for code, value, unit_text, value_text in values
        if value is not None or value_text is not None
    ]


def read_prescriptions(
    session: Session, episode_ids: Iterable[int]
) -> dict[int, Prescription]:
    """Return ``{episode_id: Prescription}`` of RT course EPISODEs (one query)."""
    episodes = sorted(set(episode_ids))
    if not episodes:
        return {}
    field_id = field_concept_id(session, "episode.episode_id")
    codes = ("total_dose", "fractions", "dose_per_fraction", "intent")
    by_concept = {our_concept_id(PRESCRIPTION_VOCAB, c): c for c in codes}
    found: dict[int, dict[str, Any]] = {e: {} for e in episodes}
    for episode, concept, value, text in session.execute(
        select(
            Measurement.measurement_event_id,
            Measurement.measurement_source_concept_id,
            Measurement.value_as_number,
            Measurement.value_source_value,
        ).where(
            Measurement.measurement_event_id.in_(episodes),
            Measurement.meas_event_field_concept_id == field_id,
            Measurement.measurement_source_concept_id.in_(list(by_concept)),
        )
    ):
        if episode is None or concept is None:
            continue
        code = by_concept[int(concept)]
        found[int(episode)][code] = text if code == "intent" else value
    return {
        e: Prescription(
            v.get("total_dose"),
            int(v["fractions"]) if v.get("fractions") else None,
            v.get("dose_per_fraction"),
            v.get("intent"),
        )
        for e, v in found.items()
    }
