"""Wiring between packages that may not import each other (ARCHITECTURE.md 1)."""

from __future__ import annotations

from sqlalchemy import Engine

__all__ = ["after_upgrade"]


def after_upgrade(engine: Engine) -> list[str]:
    """Run the steps other packages add to ``rtcohort db upgrade``; return messages."""
    del engine
    return []
