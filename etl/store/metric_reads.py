"""Readers of stored dose metrics and prescriptions for the benchmark pages.

The metrics are the ``dvh_metric`` rows :func:`etl.store.dvh_rows.write_metrics`
wrote (physical, and ``EQD2 <metric>`` with the alpha/beta of the structure); the
prescription is the course's ``total_dose`` / ``fractions`` MEASUREMENTs
(:func:`etl.store.course.write_prescription`). One narrow query each.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

from sqlalchemy import Select, Subquery, func, select
from sqlalchemy.orm import Session

from etl.store.course import PRESCRIPTION_VOCAB
from omop.cdm import Episode, Measurement, Person
from omop.ingest_tables import Dvh, DvhMetric, IngestDataset
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id

__all__ = [
    "MetricValue",
    "eqd2_spec",
    "metric_values",
    "prescription_query",
    "prescriptions",
]


class MetricValue(NamedTuple):
    """One stored metric of one structure of one dataset."""

    person_id: int
    care_site_id: int
    dataset_id: int
    episode_id: int | None
    course_start: datetime.date | None
    value: float


def eqd2_spec(metric: str) -> str:
    """Return the stored name of the EQD2 form of ``metric``."""
    return f"EQD2 {metric}"


def metric_values(
    session: Session,
    *,
    persons: Select[Any],
    structure: str,
    metric: str,
    alpha_beta_gy: float | None = None,
) -> list[MetricValue]:
    """Return the stored ``metric`` of ``structure`` for the persons in ``persons``.

    ``alpha_beta_gy`` None reads the physical metric; a value reads the EQD2 metric
    stored with that alpha/beta.
    """
    spec = metric if alpha_beta_gy is None else eqd2_spec(metric)
    query = (
        select(
            Dvh.person_id,
            Person.care_site_id,
            Dvh.dataset_id,
            IngestDataset.episode_id,
            Episode.episode_start_date,
            Measurement.value_as_number,
        )
        .select_from(DvhMetric)
        .join(Dvh, Dvh.dvh_id == DvhMetric.dvh_id)
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .join(Measurement, Measurement.measurement_id == DvhMetric.measurement_id)
        .join(Person, Person.person_id == Dvh.person_id)
        .outerjoin(Episode, Episode.episode_id == IngestDataset.episode_id)
        .where(
            Dvh.tg263_name == structure,
            DvhMetric.metric == spec,
            Dvh.person_id.in_(persons),
        )
    )
    if alpha_beta_gy is None:
        query = query.where(DvhMetric.alpha_beta_gy.is_(None))
    else:
        query = query.where(DvhMetric.alpha_beta_gy == alpha_beta_gy)
    return [
        MetricValue(int(p), int(c or 0), int(d), e, s, float(v))
        for p, c, d, e, s, v in session.execute(query).all()
        if v is not None
    ]


def prescription_query(
    session: Session,
    code: Literal["total_dose", "fractions"],
    episodes: Select[Any] | None = None,
) -> Subquery:
    """Return one prescription value of RT courses as a subquery ``(episode, value)``.

    ``code``: ``total_dose`` (Gy) or ``fractions``. One row per episode that has it
    (the largest if several), for set-based readers that join it to their courses.
    ``episodes``: a SQL selection of episode ids to restrict it to (None: every
    episode), so that the database aggregates only the courses the reader joins.
    """
    field_id = field_concept_id(session, "episode.episode_id")
    query = (
        select(
            Measurement.measurement_event_id.label("episode"),
            func.max(Measurement.value_as_number).label("value"),
        )
        .where(
            Measurement.meas_event_field_concept_id == field_id,
            Measurement.measurement_source_concept_id
            == our_concept_id(PRESCRIPTION_VOCAB, code),
            Measurement.value_as_number.is_not(None),
        )
        .group_by(Measurement.measurement_event_id)
    )
    if episodes is not None:
        query = query.where(Measurement.measurement_event_id.in_(episodes))
    return query.subquery()


def prescriptions(
    session: Session, episode_ids: Iterable[int] | Select[Any]
) -> dict[int, tuple[float | None, int | None]]:
    """Return ``{episode_id: (total dose Gy, fractions)}`` of RT courses.

    ``episode_ids``: ids, or a SQL selection of episode ids (one set-based query;
    a selection naming more episodes than needed only adds entries).
    """
    if isinstance(episode_ids, Select):
        chunks: list[Any] = [episode_ids]
    else:
        episodes = sorted(set(episode_ids))
        if not episodes:
            return {}
        chunks = [episodes[i : i + 2000] for i in range(0, len(episodes), 2000)]
    field_id = field_concept_id(session, "episode.episode_id")
    total = our_concept_id(PRESCRIPTION_VOCAB, "total_dose")
    fractions = our_concept_id(PRESCRIPTION_VOCAB, "fractions")
    out: dict[int, tuple[float | None, int | None]] = {}
    for chunk in chunks:
        rows = session.execute(
            select(
                Measurement.measurement_event_id,
                Measurement.measurement_source_concept_id,
                Measurement.value_as_number,
            ).where(
                Measurement.measurement_event_id.in_(chunk),
                Measurement.meas_event_field_concept_id == field_id,
                Measurement.measurement_source_concept_id.in_([total, fractions]),
            )
        ).all()
        for episode, concept, value in rows:
            if episode is None:
                continue
            dose, n = out.get(int(episode), (None, None))
            if concept == total and value is not None:
                dose = float(value)
            elif value is not None:
                n = int(value)
            out[int(episode)] = (dose, n)
    return out
