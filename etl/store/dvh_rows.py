"""Dose rows of a loaded dataset: the full DVHs and the dose-metric MEASUREMENTs.

Per structure the full differential DVH goes to the platform table ``dvh`` (one row
per dose grid x structure, fixed bin width, compressed float array:
:func:`pack_dvh` / :func:`dvh_from_row`); per metric one IMAGE_FEATURE + MEASUREMENT
pair (``anatomic_site_concept_id`` = structure, ``alg_system`` = :data:`ENGINE_LABEL`)
linked by the platform table ``dvh_metric``, written with the bulk loader
(:func:`write_metrics`). The metric set, units and alpha/beta are in
:mod:`etl.store.metric_set` (re-exported here).

Every other module reads these rows through
:func:`etl.store.dvh_read.read_dvh_rows` (DVHs with their dataset and course start).
The row builders :func:`dvh_row` and :func:`metric_rows` are shared with bulk writers.
"""

from __future__ import annotations

import datetime
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
from sqlalchemy import delete, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from etl.dose.coverage import dose_coverage, metric_allowed
from etl.dose.dvh import DVH
from etl.dose.metric_batch import evaluate_many
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
from omop.cdm import ImageFeature, Measurement
from omop.ingest_tables import Dvh, DvhMetric
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import STANDARD_ALGORITHM_FROM_EHR

__all__ = [
    "ENGINE_LABEL",
    "METRIC_VOCAB",
    "VOLUME_METRIC",
    "AlphaBeta",
    "MetricContext",
    "StoredCurve",
    "default_metrics",
    "delete_metrics",
    "dvh_from_row",
    "dvh_row",
    "metric_rows",
    "pack_dvh",
    "unit_of",
    "write_dvh_rows",
    "write_metrics",
]


def pack_dvh(dvh: DVH) -> bytes:
    """Compress a differential DVH (little-endian float64, zlib)."""
    return zlib.compress(np.asarray(dvh.differential_cc, dtype="<f8").tobytes(), 6)


class StoredCurve(Protocol):
    """The columns of a ``dvh`` row that hold its curve (a row, or a narrow read)."""

    @property
    def volume_cc(self) -> float:  # noqa: D102
        ...

    @property
    def outside_grid_cc(self) -> float:  # noqa: D102
        ...

    @property
    def min_gy(self) -> float | None:  # noqa: D102
        ...

    @property
    def mean_gy(self) -> float | None:  # noqa: D102
        ...

    @property
    def max_gy(self) -> float | None:  # noqa: D102
        ...

    @property
    def bin_width_gy(self) -> float:  # noqa: D102
        ...

    @property
    def differential_cc(self) -> bytes:  # noqa: D102
        ...


def dvh_from_row(row: StoredCurve) -> DVH:
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


class _Site(NamedTuple):
    """The columns of a ``dvh`` row its metric rows repeat (read once per row)."""

    image_occurrence_id: int | None
    structure_concept_id: int | None
    dvh_id: int | None
    name: str  # measurement_source_value is ``f"{name} {metric}"[:50]``


def metric_rows(
    rows: Sequence[tuple[Dvh, DVH]],
    ctx: MetricContext,
    allocate: Callable[[type[Measurement] | type[ImageFeature], int], list[int]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Build (MEASUREMENT, IMAGE_FEATURE, dvh_metric) rows of stored DVHs.

    The row builder of :func:`write_metrics` (also used by bulk writers); ``allocate``
    reserves ``n`` primary keys of a model.
    """
    pending: list[tuple[_Site, str, float | None, float, int]] = []
    for row, dvh in rows:
        target = row.is_target
        site = _Site(
            row.image_occurrence_id,
            row.structure_concept_id,
            row.dvh_id,
            (row.tg263_name or row.roi_name)[:20],
        )
        specs = default_metrics(target, row.max_gy)
        values: list[tuple[str, float | None, float | None]] = [
            (s, None, v) for s, v in zip(specs, evaluate_many(dvh, specs), strict=True)
        ]
        values.append((VOLUME_METRIC, None, row.volume_cc))
        if ctx.fractions:
            ab = ctx.alpha_beta.for_structure(target)
            eqd2 = dvh_to_eqd2(dvh, ctx.fractions, ab)
            eqd2_values = evaluate_many(eqd2, specs)
            values += [
                (f"EQD2 {s}", ab, v) for s, v in zip(specs, eqd2_values, strict=True)
            ]
        cover = dose_coverage(dvh).pct  # never a metric on dose it does not have
        for spec, ab_gy, value in values:
            if value is None or not math.isfinite(value):
                continue
            if spec != VOLUME_METRIC and not metric_allowed(spec, cover):
                continue
            pending.append(
                (site, spec, ab_gy, float(value), our_concept_id(METRIC_VOCAB, spec))
            )
    if not pending:
        return [], [], []
    feature_ids = allocate(ImageFeature, len(pending))
    measurement_ids = allocate(Measurement, len(pending))
    features, measurements, links = [], [], []
    alg_datetime = ctx.now.replace(tzinfo=None)
    for (site, spec, ab_gy, value, concept), fid, mid in zip(
        pending, feature_ids, measurement_ids, strict=True
    ):
        unit_id, unit_text = unit_of(spec.removeprefix("EQD2 "))
        features.append(
            {
                "image_feature_id": fid,
                "person_id": ctx.person_id,
                "image_occurrence_id": site.image_occurrence_id,
                "image_feature_concept_id": concept,
                "image_feature_type_concept_id": STANDARD_ALGORITHM_FROM_EHR,
                "image_feature_event_field_concept_id": ctx.metric_field,
                "image_feature_event_id": mid,
                "anatomic_site_concept_id": site.structure_concept_id,
                "alg_system": ENGINE_LABEL,
                "alg_datetime": alg_datetime,
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
                "measurement_source_value": f"{site.name} {spec}"[:50],
                "measurement_source_concept_id": concept,
                "value_source_value": f"alpha/beta {ab_gy:g} Gy" if ab_gy else None,
                "measurement_event_id": fid,
                "meas_event_field_concept_id": ctx.feature_field,
            }
        )
        links.append(
            {
                "image_feature_id": fid,
                "dvh_id": site.dvh_id,
                "measurement_id": mid,
                "metric": spec,
                "alpha_beta_gy": ab_gy,
            }
        )
    return measurements, features, links


def write_metrics(
    session: Session, rows: Sequence[tuple[Dvh, DVH]], ctx: MetricContext
) -> int:
    """Write IMAGE_FEATURE + MEASUREMENT + dvh_metric rows for stored DVHs."""
    measurements, features, links = metric_rows(
        rows, ctx, lambda model, n: _allocate_ids(session, model, n)
    )
    bulk_insert(session, Measurement, measurements)
    bulk_insert(session, ImageFeature, features)
    bulk_insert(session, DvhMetric, links)
    return len(links)


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
        row, tg263 = dvh_row(s, rules, centre)
        row.dataset_id, row.person_id = dataset_id, person_id
        row.image_occurrence_id = image_occurrence_id
        if tg263 is None:
            unmapped.append(s.roi_name)
        session.add(row)
        stored.append((row, s.dvh))
    session.flush()
    return stored, unmapped


def dvh_row(
    s: ComputedStructure, rules: RuleSet, centre: str
) -> tuple[Dvh, str | None]:
    """Build the (unsaved) ``dvh`` row of a structure; return it and its TG-263 name.

    The row builder of :func:`write_dvh_rows`: the caller sets ``dataset_id``,
    ``person_id`` and ``image_occurrence_id``.
    """
    mapped = rules.map(s.roi_name, centre)
    d = s.dvh
    row = Dvh(
        roi_number=s.roi_number,
        roi_name=s.roi_name[:64],
        interpreted_type=(s.interpreted_type or None) and str(s.interpreted_type)[:16],
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
    return row, mapped.tg263_name
