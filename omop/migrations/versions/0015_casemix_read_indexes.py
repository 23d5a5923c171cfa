"""indexes for the case-mix read of the outcome funnel

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 18:50:00.000000

Adds three of the indexes of :data:`omop.read_indexes.READ_INDEXES` that the
case-mix read (:func:`cohort.benchmark.casemix_read.read_casemix`) scans: OBSERVATION
by source concept and event field (the ages at course start, covering the episode
and value on PostgreSQL), MEASUREMENT by source concept and person (the stages per
person), ENROLMENT by treatment site and state (the consented persons of a site,
covering the person and centre on PostgreSQL). Each read is then index-only instead
of a heap scan over a block per person. Measured with ``benchmarks/scale.py``
(benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy, not an import: a migration must not change when the models do.
_INDEXES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "ix_observation_source_field": (
        "observation",
        ("observation_source_concept_id", "obs_event_field_concept_id"),
        ("observation_event_id", "value_as_number"),
    ),
    "ix_measurement_source_person": (
        "measurement",
        ("measurement_source_concept_id", "person_id"),
        (),
    ),
    "ix_enrolment_site_state": (
        "enrolment",
        ("treatment_site", "state"),
        ("person_id", "care_site_id"),
    ),
}


def upgrade() -> None:
    for name, (table, keys, include) in _INDEXES.items():
        op.create_index(name, table, list(keys), postgresql_include=list(include))


def downgrade() -> None:
    for name, (table, _keys, _include) in _INDEXES.items():
        op.drop_index(name, table_name=table)
