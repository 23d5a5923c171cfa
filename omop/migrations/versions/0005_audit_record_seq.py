"""audit record position (seq) for the keyed audit chain

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 04:10:00.000000

Adds ``audit_record.seq``, the position of a record in the chain, numbered in
``record_id`` order for the records that exist. The MACs of an existing (unkeyed
SHA-256) chain are replaced at ``rtcohort db upgrade`` when the audit key is created
(``cohort.audit_check.ensure_key``), not here: the key lives outside the database.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
    audit = sa.table("audit_record", sa.column("record_id"), sa.column("seq"))
    bind = op.get_bind()
    ids = bind.execute(sa.select(audit.c.record_id).order_by(audit.c.record_id))
    rows = [{"rid": rid, "seq": n} for n, (rid,) in enumerate(ids, start=1)]
    if rows:
        bind.execute(
            audit.update()
            .where(audit.c.record_id == sa.bindparam("rid"))
            .values(seq=sa.bindparam("seq")),
            rows,
        )
    with op.batch_alter_table("audit_record", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_record_seq"), ["seq"])


def downgrade() -> None:
    with op.batch_alter_table("audit_record", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_record_seq"), type_="unique")
        batch_op.drop_column("seq")
