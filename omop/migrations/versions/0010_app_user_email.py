"""app_user.email and app_user.disabled_at: OpenID Connect accounts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 07:00:00.000000

Adds ``app_user.email`` (nullable, unique, stored lower-cased by
``cohort.users``): a web sign-in through OpenID Connect (``st.login``) is matched to
its account by the provider's verified e-mail claim (``cohort.auth.sign_in_oidc``).
Adds ``app_user.disabled_at`` (nullable): a disabled account signs in by no route.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.add_column(
            sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint("uq_app_user_email", ["email"])


def downgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_constraint("uq_app_user_email", type_="unique")
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("email")
