"""composite indexes for the dashboards' aggregate reads at national scale

Revision ID: 0011
Revises: 0009 (rechained after 0010 when merged)
Create Date: 2026-12-05 07:00:00.000000

Adds the indexes of :data:`omop.read_indexes.READ_INDEXES`: IMAGE_FEATURE by
structure and metric, MEASUREMENT by source concept and event field, OBSERVATION by
source concept and type; on PostgreSQL each covers the columns the aggregations read
(``INCLUDE``). Measured with ``benchmarks/scale.py`` (benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy, not an import: a migration must not change when the models do.
_INDEXES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "ix_image_feature_site_feature": (
        "image_feature",
        ("anatomic_site_concept_id", "image_feature_concept_id"),
        ("image_feature_event_id", "person_id"),
    ),
    "ix_measurement_source_field": (
        "measurement",
        ("measurement_source_concept_id", "meas_event_field_concept_id"),
        ("measurement_event_id", "value_as_number"),
    ),
    "ix_observation_source_type": (
        "observation",
        ("observation_source_concept_id", "observation_type_concept_id"),
        ("person_id", "observation_date", "value_as_number"),
    ),
}


def upgrade() -> None:
    for name, (table, keys, include) in _INDEXES.items():
        op.create_index(name, table, list(keys), postgresql_include=list(include))


def downgrade() -> None:
    for name, (table, _keys, _include) in _INDEXES.items():
        op.drop_index(name, table_name=table)
