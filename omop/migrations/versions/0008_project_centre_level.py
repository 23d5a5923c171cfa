"""project.centre_level: the protocol grants analysis by centre

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 04:30:00.000000

Adds ``project.centre_level`` (default false). Without it, a project's exports and
datasets withhold the centre (no centre column, project pseudonyms without a centre
prefix, ``cohort.project_keys``); with it, the centre column is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("project", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "centre_level",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("project", schema=None) as batch_op:
        batch_op.drop_column("centre_level")
