"""Helpers shared by the command modules: one-line errors, the engine."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["fail", "open_engine", "warn_loose_files"]

_LOG = logging.getLogger(__name__)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def warn_loose_files() -> None:
    """Warn (log + one stderr line) when the data folder or database is open to others.

    The data folder holds the quarantine (identifiable files as received), the
    database and pseudonymised images; rtcohort creates all of them 0700 / 0600.
    """
    from rtcohort.wiring import loose_private_paths

    loose = loose_private_paths()
    if not loose:
        return
    shown = ", ".join(str(p) for p in loose[:3]) + (", ..." if len(loose) > 3 else "")
    message = (
        f"{len(loose)} path(s) of the data folder or database are open to other "
        f"users: {shown}; close them with chmod go-rwx"
    )
    _LOG.warning(message)
    typer.echo(f"warning: {message}", err=True)


def open_engine() -> Engine:
    """Return an engine for the configured database, or exit 2 with a hint.

    Warns first when the data folder or the database file is open to others
    (:func:`warn_loose_files`). Then signs in the acting user
    (:func:`rtcohort.cli.signin.authenticate`): without valid credentials the
    command exits 2 before anything else touches the database.
    """
    from omop.engine import check_connection, make_engine
    from omop.errors import DatabaseUnavailableError
    from rtcohort.settings import get_settings

    # Before the first connection: SQLite creates missing -wal/-shm files with the
    # database file's mode, so checking after it would count them too, or not,
    # depending on whether an earlier connection still held them.
    warn_loose_files()
    try:
        engine = make_engine(get_settings().resolved_database_url())
        check_connection(engine)
    except DatabaseUnavailableError as exc:
        fail(str(exc))
    from rtcohort.wiring import configure_audit

    configure_audit(engine)
    from rtcohort.cli.signin import authenticate

    try:
        authenticate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
