"""dvh_sampled (each stored DVH's cumulative curve sampled every 1 Gy, physical, EQD2)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 19:10:00.000000

Adds the summary table the population DVH band reads
(:class:`omop.summary_tables.DvhSampled`, kept by the DVH writers through
:mod:`etl.store.dvh_samples`) and fills it from the DVHs already stored, 2,000
``dvh`` rows at a time: per row the cumulative curve sampled every 1 Gy in physical
dose and, when the course's prescription has fractions, in EQD2 at alpha/beta 3 Gy.
The sampling itself is imported (:func:`etl.dose.dvh_sample.sample_each`, with the
engine's :class:`etl.dose.histogram.DVH`): it is the computation the band would
otherwise do at read time, and the band resamples any curve whose stored row
disagrees with the prescription. The row layout, names and concept ids are copies.
On PostgreSQL ``ix_dvh_name_person`` (:data:`omop.read_indexes.READ_INDEXES`) is
rebuilt to cover ``dvh_id`` as well: the band selects the curves by TG-263 name and
person and joins them to their samples without reading the wide ``dvh`` rows.
Downgrade drops the table and restores the index.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

from etl.dose.dvh_sample import sample_each
from etl.dose.histogram import DVH

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copies, not imports: a migration must not change when the code does.
_STEP_GY = 1.0
_ALPHA_BETA_GY = 3.0
_PHYSICAL = "physical"
_EQD2 = "eqd2_ab3"
#: ``RTC Prescription`` ``fractions`` (our registry's id).
_FRACTIONS_CONCEPT = 2050002554
_EPISODE_FIELD = "episode.episode_id"
_BATCH = 2000

_DVH = sa.table(
    "dvh",
    *(
        sa.column(c)
        for c in (
            "dvh_id", "dataset_id", "person_id", "volume_cc", "outside_grid_cc",
            "min_gy", "mean_gy", "max_gy", "bin_width_gy", "differential_cc",
        )
    ),
)  # fmt: skip
_DATASET = sa.table("ingest_dataset", sa.column("dataset_id"), sa.column("episode_id"))
_MEASUREMENT = sa.table(
    "measurement",
    sa.column("measurement_event_id"),
    sa.column("meas_event_field_concept_id"),
    sa.column("measurement_source_concept_id"),
    sa.column("value_as_number"),
)
_CONCEPT = sa.table(
    "concept",
    sa.column("concept_id"),
    sa.column("vocabulary_id"),
    sa.column("concept_class_id"),
    sa.column("concept_name"),
)
_SAMPLED = sa.table(
    "dvh_sampled",
    *(
        sa.column(c)
        for c in (
            "dvh_id", "representation", "step_gy", "person_id", "fractions",
            "n_samples", "samples",
        )
    ),
)  # fmt: skip


def _batch_query(after: int) -> sa.Select[Any]:
    field = (
        sa.select(sa.func.min(_CONCEPT.c.concept_id))
        .where(
            _CONCEPT.c.vocabulary_id == "CDM",
            _CONCEPT.c.concept_class_id == "Field",
            _CONCEPT.c.concept_name == _EPISODE_FIELD,
        )
        .scalar_subquery()
    )
    fractions = (
        sa.select(sa.func.max(_MEASUREMENT.c.value_as_number))
        .where(
            _MEASUREMENT.c.measurement_event_id == _DATASET.c.episode_id,
            _MEASUREMENT.c.meas_event_field_concept_id == field,
            _MEASUREMENT.c.measurement_source_concept_id == _FRACTIONS_CONCEPT,
        )
        .scalar_subquery()
    )
    return (
        sa.select(_DVH, fractions.label("fractions"))
        .join(_DATASET, _DATASET.c.dataset_id == _DVH.c.dataset_id)
        .where(_DVH.c.dvh_id > after)
        .order_by(_DVH.c.dvh_id)
        .limit(_BATCH)
    )


def _dvh(row: Any) -> DVH:
    nan = float("nan")
    return DVH(
        volume_cc=row.volume_cc,
        outside_grid_cc=row.outside_grid_cc,
        min_gy=nan if row.min_gy is None else row.min_gy,
        mean_gy=nan if row.mean_gy is None else row.mean_gy,
        max_gy=nan if row.max_gy is None else row.max_gy,
        bin_width_gy=row.bin_width_gy,
        differential_cc=np.frombuffer(
            zlib.decompress(row.differential_cc), dtype="<f8"
        ).astype(np.float64),
    )


def _rows(batch: Sequence[Any]) -> list[dict[str, Any]]:
    dvhs = [_dvh(r) for r in batch]
    out: list[dict[str, Any]] = []

    def add(rows: Sequence[Any], curves: list[DVH], rep: str, n: list[int] | None):
        each = sample_each(
            curves, _STEP_GY, alpha_beta_gy=_ALPHA_BETA_GY,
            fractions=None if n is None else [float(f) for f in n],
        )  # fmt: skip
        for i, (row, values) in enumerate(zip(rows, each, strict=True)):
            if values is None:  # an implausible EQD2 maximum: sampled at read time
                continue
            out.append(
                {"dvh_id": row.dvh_id, "representation": rep, "step_gy": _STEP_GY,
                 "person_id": row.person_id, "fractions": None if n is None else n[i],
                 "n_samples": len(values),
                 "samples": np.asarray(values, dtype="<f8").tobytes()}
            )  # fmt: skip

    add(batch, dvhs, _PHYSICAL, None)
    with_n = [i for i, r in enumerate(batch) if r.fractions and int(r.fractions)]
    add(
        [batch[i] for i in with_n],
        [dvhs[i] for i in with_n],
        _EQD2,
        [int(batch[i].fractions) for i in with_n],
    )
    return out


def _dvh_index(include: list[str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no INCLUDE: the index is the same
    op.drop_index("ix_dvh_name_person", table_name="dvh")
    op.create_index(
        "ix_dvh_name_person",
        "dvh",
        ["tg263_name", "person_id"],
        postgresql_include=include,
    )


def upgrade() -> None:
    _dvh_index(["dataset_id", "roi_number", "dvh_id"])
    op.create_table(
        "dvh_sampled",
        sa.Column("dvh_id", sa.Integer(), nullable=False),
        sa.Column("representation", sa.String(length=16), nullable=False),
        sa.Column("step_gy", sa.Float(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("fractions", sa.Integer(), nullable=True),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("samples", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dvh_id"],
            ["dvh.dvh_id"],
            name=op.f("fk_dvh_sampled_dvh_id_dvh"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.person_id"],
            name=op.f("fk_dvh_sampled_person_id_person"),
        ),
        sa.PrimaryKeyConstraint(
            "dvh_id", "representation", "step_gy", name=op.f("pk_dvh_sampled")
        ),
    )
    bind = op.get_bind()
    after = 0
    while True:
        batch = bind.execute(_batch_query(after)).all()
        if not batch:
            break
        rows = _rows(batch)
        if rows:
            bind.execute(_SAMPLED.insert(), rows)
        after = int(batch[-1].dvh_id)
    op.create_index(
        op.f("ix_dvh_sampled_person_id"), "dvh_sampled", ["person_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dvh_sampled_person_id"), table_name="dvh_sampled")
    op.drop_table("dvh_sampled")
    _dvh_index(["dataset_id", "roi_number"])
