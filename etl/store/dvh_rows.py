"""Dose rows of a loaded dataset: the full DVHs and the dose-metric MEASUREMENTs.

Per structure the full differential DVH goes to the platform table ``dvh`` (one row
per dose grid x structure, fixed bin width, compressed float array:
:func:`pack_dvh` / :func:`dvh_from_row`); per metric one IMAGE_FEATURE + MEASUREMENT
pair (``anatomic_site_concept_id`` = structure, ``alg_system`` = :data:`ENGINE_LABEL`)
linked by the platform table ``dvh_metric``, written with the bulk loader
(:func:`write_metrics`). The metric set, units and alpha/beta are in
:mod:`etl.store.metric_set` (re-exported here).

Every other module reads these rows through :func:`read_dvh_rows` (DVHs with their
dataset and course start).
"""

from __future__ import annotations

import datetime
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import ColumnElement, Select, delete, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from etl.dose.coverage import dose_coverage, metric_allowed
from etl.dose.dvh import DVH
from etl.dose.metrics import evaluate
from etl.dose.radiobiology import dvh_to_eqd2
from etl.mapping.naming import RuleSet, is_target, structure_concept_id
from etl.store.computed import ComputedStructure
from etl.store.metric_set import (
    ENGINE_LABEL,
    METRIC_VOCAB,
    VOLUME_METRIC,
    AlphaBeta,
    default_metrics,
    unit_of,
)
from omop.bulk import bulk_insert
from omop.cdm import Episode, ImageFeature, Measurement, Person
from omop.ingest_tables import Dvh, DvhMetric, IngestDataset
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import RT_COURSE_EPISODE, STANDARD_ALGORITHM_FROM_EHR

__all__ = [
    "ENGINE_LABEL",
    "METRIC_VOCAB",
    "VOLUME_METRIC",
    "AlphaBeta",
    "LoadedDvh",
    "MetricContext",
    "default_metrics",
    "delete_metrics",
    "dvh_from_row",
    "pack_dvh",
    "read_dvh_rows",
    "unit_of",
    "write_dvh_rows",
    "write_metrics",
]


def pack_dvh(dvh: DVH) -> bytes:
    """Compress a differential DVH (little-endian float64, zlib)."""
    return zlib.compress(np.asarray(dvh.differential_cc, dtype="<f8").tobytes(), 6)


def dvh_from_row(row: Dvh) -> DVH:
    """Rebuild the engine's :class:`~etl.dose.dvh.DVH` from a stored row (exactly)."""
    diff = np.frombuffer(zlib.decompress(row.differential_cc), dtype="<f8")
    nan = float("nan")
    return DVH(
        volume_cc=row.volume_cc,
        outside_grid_cc=row.outside_grid_cc,
        min_gy=nan if row.min_gy is None else row.min_gy,
        mean_gy=nan if row.mean_gy is None else row.mean_gy,
        max_gy=nan if row.max_gy is None else row.max_gy,
        bin_width_gy=row.bin_width_gy,
        differential_cc=diff.astype(np.float64),
    )


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _pk(model: type[Measurement] | type[ImageFeature]) -> tuple[str, str]:
    column = sa_inspect(model).primary_key[0]  # type: ignore[attr-defined]
    return str(model.__tablename__), str(column.name)


def _allocate_ids(
    session: Session, model: type[Measurement] | type[ImageFeature], n: int
) -> list[int]:
    """Reserve ``n`` primary keys (sequence on PostgreSQL, max + 1 on SQLite)."""
    table, column = _pk(model)
    if session.get_bind().dialect.name == "postgresql":
        ids = session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence(:t, :c)) "
                "FROM generate_series(1, :n)"
            ),
            {"t": table, "c": column, "n": n},
        ).scalars()
        return sorted(int(i) for i in ids)
    start = int(session.scalar(text(f"SELECT MAX({column}) FROM {table}")) or 0) + 1
    return list(range(start, start + n))


@dataclass
class MetricContext:
    """What the metric rows of one dataset share (person, date, fractions, fields)."""

    person_id: int
    day: datetime.date
    fractions: int | None
    alpha_beta: AlphaBeta
    metric_field: int
    feature_field: int
    now: datetime.datetime


def write_metrics(
    session: Session, rows: Sequence[tuple[Dvh, DVH]], ctx: MetricContext
) -> int:
    """Write IMAGE_FEATURE + MEASUREMENT + dvh_metric rows for stored DVHs."""
    pending: list[tuple[Dvh, str, float | None, float, int]] = []
    for row, dvh in rows:
        target = row.is_target
        specs = default_metrics(target, row.max_gy)
        values: list[tuple[str, float | None, float | None]] = [
            (s, None, evaluate(dvh, s)) for s in specs
        ]
        values.append((VOLUME_METRIC, None, row.volume_cc))
        if ctx.fractions:
            ab = ctx.alpha_beta.for_structure(target)
            eqd2 = dvh_to_eqd2(dvh, ctx.fractions, ab)
            values += [(f"EQD2 {s}", ab, evaluate(eqd2, s)) for s in specs]
        cover = dose_coverage(dvh).pct  # never a metric on dose it does not have
        for spec, ab_gy, value in values:
            if value is None or not math.isfinite(value):
                continue
            if spec != VOLUME_METRIC and not metric_allowed(spec, cover):
                continue
            pending.append(
                (row, spec, ab_gy, float(value), our_concept_id(METRIC_VOCAB, spec))
            )
    if not pending:
        return 0
    feature_ids = _allocate_ids(session, ImageFeature, len(pending))
    measurement_ids = _allocate_ids(session, Measurement, len(pending))
    features, measurements, links = [], [], []
    for (row, spec, ab_gy, value, concept), fid, mid in zip(
        pending, feature_ids, measurement_ids, strict=True
    ):
        unit_id, unit_text = unit_of(spec.removeprefix("EQD2 "))
        features.append(
            {
                "image_feature_id": fid,
                "person_id": ctx.person_id,
                "image_occurrence_id": row.image_occurrence_id,
                "image_feature_concept_id": concept,
                "image_feature_type_concept_id": STANDARD_ALGORITHM_FROM_EHR,
                "image_feature_event_field_concept_id": ctx.metric_field,
                "image_feature_event_id": mid,
                "anatomic_site_concept_id": row.structure_concept_id,
                "alg_system": ENGINE_LABEL,
                "alg_datetime": ctx.now.replace(tzinfo=None),
            }
        )
        measurements.append(
            {
                "measurement_id": mid,
                "person_id": ctx.person_id,
                "measurement_concept_id": 0,
                "measurement_date": ctx.day,
                "measurement_type_concept_id": STANDARD_ALGORITHM_FROM_EHR,
                "value_as_number": value,
                "unit_concept_id": unit_id,
                "unit_source_value": unit_text,
                "measurement_source_value": _source_value(row, spec),
                "measurement_source_concept_id": concept,
                "value_source_value": f"alpha/beta {ab_gy:g} Gy" if ab_gy else None,
                "measurement_event_id": fid,
                "meas_event_field_concept_id": ctx.feature_field,
            }
        )
        links.append(
            {
                "image_feature_id": fid,
                "dvh_id": row.dvh_id,
                "measurement_id": mid,
                "metric": spec,
                "alpha_beta_gy": ab_gy,
            }
        )
    bulk_insert(session, Measurement, measurements)
    bulk_insert(session, ImageFeature, features)
    bulk_insert(session, DvhMetric, links)
    return len(pending)


def _source_value(row: Dvh, spec: str) -> str:
    return f"{(row.tg263_name or row.roi_name)[:20]} {spec}"[:50]


def delete_metrics(session: Session, dvh_ids: Sequence[int]) -> None:
    """Delete the metric rows (IMAGE_FEATURE, MEASUREMENT, link) of stored DVHs."""
    if not dvh_ids:
        return
    ids = list(dvh_ids)
    links = session.execute(
        select(DvhMetric.image_feature_id, DvhMetric.measurement_id).where(
            DvhMetric.dvh_id.in_(ids)
        )
    ).all()
    session.execute(delete(DvhMetric).where(DvhMetric.dvh_id.in_(ids)))
    features = [f for f, _ in links]
    measurements = [m for _, m in links]
    for start in range(0, len(features), 1000):
        session.execute(
            delete(ImageFeature).where(
                ImageFeature.image_feature_id.in_(features[start : start + 1000])
            )
        )
        session.execute(
            delete(Measurement).where(
                Measurement.measurement_id.in_(measurements[start : start + 1000])
            )
        )


def write_dvh_rows(
    session: Session,
    *,
    dataset_id: int,
    person_id: int,
    image_occurrence_id: int,
    centre: str,
    structures: Sequence[ComputedStructure],
    rules: RuleSet,
) -> tuple[list[tuple[Dvh, DVH]], list[str]]:
    """Write one ``dvh`` row per structure; return (rows with DVHs, unmapped names).

    Each ROI name is mapped to TG-263 with ``rules`` for ``centre``.
    """
    stored: list[tuple[Dvh, DVH]] = []
    unmapped: list[str] = []
    for s in structures:
        mapped = rules.map(s.roi_name, centre)
        if mapped.tg263_name is None:
            unmapped.append(s.roi_name)
        d = s.dvh
        row = Dvh(
            dataset_id=dataset_id,
            person_id=person_id,
            image_occurrence_id=image_occurrence_id,
            roi_number=s.roi_number,
            roi_name=s.roi_name[:64],
            interpreted_type=(s.interpreted_type or None)
            and str(s.interpreted_type)[:16],
            tg263_name=mapped.tg263_name,
            structure_concept_id=structure_concept_id(mapped.tg263_name),
            mapping_rule_id=mapped.rule.rule_id if mapped.rule else None,
            is_target=is_target(mapped.tg263_name, s.interpreted_type),
            volume_cc=float(d.volume_cc),
            outside_grid_cc=float(d.outside_grid_cc),
            min_gy=_finite(d.min_gy),
            mean_gy=_finite(d.mean_gy),
            max_gy=_finite(d.max_gy),
            bin_width_gy=float(d.bin_width_gy),
            n_bins=len(d.differential_cc),
            differential_cc=pack_dvh(d),
            engine=ENGINE_LABEL,
        )
        session.add(row)
        stored.append((row, d))
    session.flush()
    return stored, unmapped


class LoadedDvh(NamedTuple):
    """A stored DVH row with its dataset, the patient's pseudonym and RT course."""

    dvh: Dvh
    dataset: IngestDataset
    pseudonym: str | None
    course_start: datetime.date | None  # None: the dataset has no RT course episode
    course_episode_id: int | None


def read_dvh_rows(
    session: Session,
    *,
    person_filter: Callable[[ColumnElement[int]], ColumnElement[bool]] | None = None,
    persons: Select[Any] | None = None,
    centres: Sequence[str] = (),
    structures: Sequence[str] = (),
) -> list[LoadedDvh]:
    """Return stored DVHs, ordered by pseudonym, course, dataset and ROI number.

    Parameters
    ----------
    person_filter
        Turns the person id column into a condition (the permission layer's filter).
    persons
        A SQL selection of person ids to keep.
    centres
        Centre codes of the datasets to keep (any case).
    structures
        TG-263 names to keep.
    """
    query = (
        select(
            Dvh,
            IngestDataset,
            Person.person_source_value,
            Episode.episode_start_date,
            Episode.episode_id,
        )
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .join(Person, Person.person_id == Dvh.person_id)
        .outerjoin(
            Episode,
            (Episode.episode_id == IngestDataset.episode_id)
            & (Episode.episode_concept_id == RT_COURSE_EPISODE),
        )
    )
    if person_filter is not None:
        query = query.where(person_filter(Dvh.person_id))  # type: ignore[arg-type]
    if persons is not None:
        query = query.where(Dvh.person_id.in_(persons))
    if centres:
        query = query.where(IngestDataset.centre.in_([c.upper() for c in centres]))
    if structures:
        query = query.where(Dvh.tg263_name.in_(list(structures)))
    query = query.order_by(
        Person.person_source_value,
        IngestDataset.episode_id,
        Dvh.dataset_id,
        Dvh.roi_number,
    )
    return [LoadedDvh(*row) for row in session.execute(query).all()]
