"""Helpers shared by the command modules: one-line errors, the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["fail", "open_engine"]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def open_engine() -> Engine:
    """Return an engine for the configured database, or exit 2 with a hint."""
    from omop.engine import check_connection, make_engine
    from omop.errors import DatabaseUnavailableError
    from rtcohort.settings import get_settings

    try:
        engine = make_engine(get_settings().resolved_database_url())
        check_connection(engine)
    except DatabaseUnavailableError as exc:
        fail(str(exc))
    from rtcohort.wiring import configure_audit

    configure_audit(engine)
    return engine
