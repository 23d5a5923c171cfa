"""assessment_version: corrected PROMs and CTCAE gradings keep their earlier versions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 04:30:00.000000

One row per version of a corrected assessment (the OMOP rows of every version stay);
readers leave out the rows of superseded versions (``instruments.store``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assessment_version",
        sa.Column("version_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("assessment_key", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.Column("condition_occurrence_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.person_id"],
            name=op.f("fk_assessment_version_person_id_person"),
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by"],
            ["assessment_version.version_id"],
            name=op.f("fk_assessment_version_superseded_by_assessment_version"),
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_assessment_version")),
    )
    with op.batch_alter_table("assessment_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assessment_version_kind_row_id"),
            ["kind", "row_id"],
            unique=True,
        )
        batch_op.create_index(
            batch_op.f("ix_assessment_version_person_id"), ["person_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("assessment_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_version_person_id"))
        batch_op.drop_index(batch_op.f("ix_assessment_version_kind_row_id"))
    op.drop_table("assessment_version")
