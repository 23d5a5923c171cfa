"""indexes for the benchmark pages' reads by person and by questionnaire

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:30:00.000000

Adds two of the indexes of :data:`omop.read_indexes.READ_INDEXES`: OBSERVATION by
type and person (the CTCAE gradings of a set of persons, and per centre and visit,
without scanning every survey answer), MEASUREMENT by event and event field (the
scale scores of a set of questionnaires); on PostgreSQL each covers the columns the
aggregations read (``INCLUDE``). Measured with ``benchmarks/scale.py``
(benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy, not an import: a migration must not change when the models do.
_INDEXES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "ix_observation_type_person": (
        "observation",
        ("observation_type_concept_id", "person_id"),
        (
            "observation_source_concept_id",
            "observation_date",
            "value_as_number",
            "visit_occurrence_id",
        ),
    ),
    "ix_measurement_event_field": (
        "measurement",
        ("measurement_event_id", "meas_event_field_concept_id"),
        ("measurement_source_concept_id", "value_as_number"),
    ),
}


def upgrade() -> None:
    for name, (table, keys, include) in _INDEXES.items():
        op.create_index(name, table, list(keys), postgresql_include=list(include))


def downgrade() -> None:
    for name, (table, _keys, _include) in _INDEXES.items():
        op.drop_index(name, table_name=table)
