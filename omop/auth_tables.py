"""Platform tables of sign-in: personal API tokens and failed sign-in attempts.

The logic lives in :mod:`cohort.auth`; this module only declares storage. A token is
stored as the SHA-256 of its text (the text is shown once, never stored).
"""

from __future__ import annotations

import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omop.base import Base

__all__ = ["ApiToken", "SignInFailure"]

_TZ = DateTime(timezone=True)


class ApiToken(Base):
    """A personal API token of a user (``RTCOHORT_TOKEN``), stored hashed."""

    __tablename__ = "api_token"

    token_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("app_user.user_id"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    expires_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(_TZ, nullable=True)


class SignInFailure(Base):
    """One failed sign-in attempt (for the lockout; the name as given, no secret)."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (Index("ix_sign_in_failure_user_at", "username", "failed_at"),)

    failure_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    failed_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    reason: Mapped[str] = mapped_column(String(50), nullable=False)
