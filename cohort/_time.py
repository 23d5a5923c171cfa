"""Timezone-aware clock helpers (SQLite returns naive datetimes: they are UTC)."""

from __future__ import annotations

import datetime

__all__ = ["as_utc", "utcnow"]


def utcnow() -> datetime.datetime:
    """Return the current time, aware, in UTC."""
    return datetime.datetime.now(datetime.UTC)


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)
