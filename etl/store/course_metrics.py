"""Course-level dose metrics: MEASUREMENTs linked to the RT course EPISODE.

The dose of a course of several plans on one frame of reference (a sequential boost,
an adaptation) is summed (:mod:`etl.dose.course`) and its metrics are stored, per
structure, as MEASUREMENT rows with ``measurement_event_id`` = the RT course EPISODE
and ``meas_event_field_concept_id`` = the field concept ``episode.episode_id`` (the
link of the prescription, :mod:`etl.store.course`), not through IMAGE_FEATURE: the
summed grid is no image. They use the dose-metric concepts of
:mod:`etl.store.dvh_rows` (``RTC Dose Metric``; EQD2 ones prefixed ``EQD2 ``), its
units and its ``measurement_source_value`` form (``<structure> <metric>``);
``value_source_value`` says that they are a course sum (and the alpha/beta).

This module writes (:func:`write_course_metrics`), replaces
(:func:`delete_course_metrics`) and reads (:func:`read_course_metrics`) them.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from etl.dose.coverage import dose_coverage, metric_allowed
from etl.dose.dvh import DVH
from etl.dose.metrics import evaluate
from etl.store.metric_set import METRIC_VOCAB, VOLUME_METRIC, default_metrics, unit_of
from omop.cdm import Concept, Measurement
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import STANDARD_ALGORITHM_FROM_EHR

__all__ = [
    "COURSE_SUM_LABEL",
    "CourseMetric",
    "CourseStructure",
    "delete_course_metrics",
    "read_course_metrics",
    "write_course_metrics",
]

#: Start of ``value_source_value`` of every course-level metric.
COURSE_SUM_LABEL = "course sum"


@dataclass(frozen=True)
class CourseStructure:
    """One structure's DVHs on a course's summed dose.

    Attributes
    ----------
    name : str
        TG-263 name when mapped, else the ROI name (the ``measurement_source_value``
        prefix).
    is_target : bool
        Targets get D95%/D99%, organs at risk Vx (:func:`~etl.store.dvh_rows.
        default_metrics`).
    physical : DVH
        On the physical course sum.
    eqd2 : DVH or None
        On the EQD2 course sum of the structure's alpha/beta.
    alpha_beta_gy : float or None
        That alpha/beta.
    """

    name: str
    is_target: bool
    physical: DVH
    eqd2: DVH | None = None
    alpha_beta_gy: float | None = None


class CourseMetric(NamedTuple):
    """A stored course-level metric."""

    measurement_id: int
    person_id: int
    episode_id: int
    structure: str
    metric: str
    value: float
    unit: str
    label: str  # value_source_value: course sum of N plans[, alpha/beta]


def _values(s: CourseStructure) -> list[tuple[str, float, float | None]]:
    """Return the (metric, value, alpha/beta) of a structure that may be stored."""
    specs = default_metrics(s.is_target, s.physical.max_gy)
    out: list[tuple[str, float | None, float | None]] = [
        (m, evaluate(s.physical, m), None) for m in specs
    ]
    out.append((VOLUME_METRIC, s.physical.volume_cc, None))
    if s.eqd2 is not None:
        out += [(f"EQD2 {m}", evaluate(s.eqd2, m), s.alpha_beta_gy) for m in specs]
    cover = dose_coverage(s.physical).pct  # never a metric on dose it does not have
    return [
        (m, float(v), ab)
        for m, v, ab in out
        if v is not None
        and math.isfinite(v)
        and (m == VOLUME_METRIC or metric_allowed(m, cover))
    ]


def write_course_metrics(
    session: Session,
    *,
    person_id: int,
    episode_id: int,
    day: datetime.date,
    structures: Sequence[CourseStructure],
    n_plans: int,
) -> int:
    """Write the metrics of a course's summed dose, linked to its EPISODE.

    Parameters
    ----------
    session
        The caller's transaction (never committed here).
    person_id, episode_id
        The person and the RT course EPISODE (32940) the metrics belong to.
    day
        ``measurement_date`` (the course start).
    structures
        The DVHs on the course sum.
    n_plans
        How many plans were summed (in ``value_source_value``).

    Returns
    -------
    int
        The number of MEASUREMENT rows written.
    """
    field_id = field_concept_id(session, "episode.episode_id")
    n = 0
    for s in structures:
        for metric, value, ab in _values(s):
            unit_id, unit_text = unit_of(metric.removeprefix("EQD2 "))
            label = f"{COURSE_SUM_LABEL} of {n_plans} plans"
            if ab is not None:
                label += f"; alpha/beta {ab:g} Gy"
            session.add(
                Measurement(
                    person_id=person_id,
                    measurement_concept_id=0,
                    measurement_date=day,
                    measurement_type_concept_id=STANDARD_ALGORITHM_FROM_EHR,
                    value_as_number=value,
                    unit_concept_id=unit_id,
                    unit_source_value=unit_text,
                    measurement_source_value=f"{s.name[:20]} {metric}"[:50],
                    measurement_source_concept_id=our_concept_id(METRIC_VOCAB, metric),
                    value_source_value=label[:50],
                    measurement_event_id=episode_id,
                    meas_event_field_concept_id=field_id,
                )
            )
            n += 1
    session.flush()
    return n


def _metric_concepts() -> Select[int]:
    """Return the ids of our dose-metric concepts (a subquery)."""
    return select(Concept.concept_id).where(Concept.vocabulary_id == METRIC_VOCAB)


def delete_course_metrics(session: Session, episode_ids: Iterable[int]) -> None:
    """Delete the course-level dose metrics of RT course EPISODEs (not the others)."""
    ids = sorted(set(episode_ids))
    if not ids:
        return
    field_id = field_concept_id(session, "episode.episode_id")
    session.execute(
        delete(Measurement).where(
            Measurement.measurement_event_id.in_(ids),
            Measurement.meas_event_field_concept_id == field_id,
            Measurement.measurement_source_concept_id.in_(_metric_concepts()),
        )
    )


def read_course_metrics(
    session: Session, episode_ids: Iterable[int]
) -> list[CourseMetric]:
    """Return the course-level dose metrics of RT course EPISODEs.

    Ordered by episode, then measurement id (the order written).
    """
    ids = sorted(set(episode_ids))
    if not ids:
        return []
    field_id = field_concept_id(session, "episode.episode_id")
    rows = session.execute(
        select(Measurement, Concept.concept_code)
        .join(Concept, Concept.concept_id == Measurement.measurement_source_concept_id)
        .where(
            Concept.vocabulary_id == METRIC_VOCAB,
            Measurement.measurement_event_id.in_(ids),
            Measurement.meas_event_field_concept_id == field_id,
        )
        .order_by(Measurement.measurement_event_id, Measurement.measurement_id)
    ).all()
    out: list[CourseMetric] = []
    for m, code in rows:
        source = m.measurement_source_value or ""
        out.append(
            CourseMetric(
                measurement_id=int(m.measurement_id),
                person_id=int(m.person_id),
                episode_id=int(m.measurement_event_id or 0),
                structure=source[: len(source) - len(code)].strip(),
                metric=str(code),
                value=float(m.value_as_number or 0.0),
                unit=m.unit_source_value or "",
                label=m.value_source_value or "",
            )
        )
    return out
