"""`rtcohort` commands owned by the `ntcp` area."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Register this area's commands on the root app."""
