"""Turn the errors that reach the ``rtcohort`` command into one-line messages.

Every command runs inside :class:`MappedGroup` (the root group of the app built by
:func:`rtcohort.cli._build`), so ``rtcohort CMD`` and ``CliRunner().invoke(app, ...)``
map errors the same way: a platform error
(:class:`omop.errors.RTCohortError`), a database without rtcohort's schema, an
unreadable, non-UTF-8, malformed or too deeply nested input file becomes
``error: <file>: <field>: <reason>`` on stderr and exit code 2 (bad input) or 1
(a failure: the database, the disk, a bug). ``rtcohort --debug CMD`` re-raises
instead, so that Python prints the traceback.

:func:`describe` is the mapping itself (pure: an exception in, a message and an exit
code out).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["BAD_INPUT", "FAILURE", "MappedGroup", "describe"]

#: Exit code of a refused request or bad input (usage errors share it, as in click).
BAD_INPUT = 2
#: Exit code of a failure: the database, the disk, a bug.
FAILURE = 1

_LOG = logging.getLogger(__name__)
_PATH_NAMES = ("path", "file", "filename", "file_path", "source", "src", "csv_path")
_BAD_FILE = (
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    FileExistsError,
)
_NO_TABLE = ("no such table", "undefinedtable", "does not exist")
_NO_COLUMN = ("no such column", "undefinedcolumn", "has no column")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _file_in_traceback(tb: TracebackType | None) -> str | None:
    """Return the innermost file a frame of ``tb`` was working on, if any.

    A frame's local variable named like a path (``path``, ``file``...) holding a
    :class:`~pathlib.Path` (or a string naming an existing file) is taken.
    """
    found: str | None = None
    while tb is not None:
        local = tb.tb_frame.f_locals
        for name in _PATH_NAMES:
            value = local.get(name)
            if isinstance(value, Path) or (
                isinstance(value, str) and value and os.path.isfile(value)
            ):
                found = str(value)
                break
        tb = tb.tb_next
    return found


def _file_in_args(args: Sequence[str]) -> str | None:
    """Return the existing paths named on the command line, comma separated."""
    paths = [a for a in args if not a.startswith("-") and os.path.exists(a)]
    return ", ".join(paths) if paths else None


def _where(exc: BaseException, args: Sequence[str]) -> str:
    place = _file_in_traceback(exc.__traceback__) or _file_in_args(args)
    return f"{place}: " if place else ""


def _database_message(exc: Exception) -> tuple[str, int]:
    orig = getattr(exc, "orig", None)
    detail = _first_line(str(orig if orig is not None else exc))
    kind = f"{type(orig).__name__} {detail}".lower()
    if any(marker in kind for marker in _NO_TABLE):
        return (
            f"database: the rtcohort schema is missing ({detail}); "
            "run `rtcohort db upgrade` first",
            BAD_INPUT,
        )
    if any(marker in kind for marker in _NO_COLUMN):
        return (
            f"database: the schema is older than this rtcohort ({detail}); "
            "run `rtcohort db upgrade`",
            BAD_INPUT,
        )
    return f"database: {type(exc).__name__}: {detail}", FAILURE


def describe(exc: BaseException, args: Sequence[str] = ()) -> tuple[str, int]:
    """Return the one-line message and exit code for ``exc``.

    Parameters
    ----------
    exc
        The exception that ended a command.
    args
        The command line (used to name the input file when the exception does
        not name one).

    Returns
    -------
    tuple of (str, int)
        The message (without the ``error:`` prefix) and the exit code:
        :data:`BAD_INPUT` (2) for bad input or a refused request, :data:`FAILURE`
        (1) for a failure.
    """
    from omop.errors import RTCohortError

    if isinstance(exc, RTCohortError):
        code = BAD_INPUT
        if isinstance(exc, RuntimeError | ConnectionError) or (
            isinstance(exc, OSError) and not isinstance(exc, _BAD_FILE)
        ):
            code = FAILURE
        return _first_line(str(exc)) or type(exc).__name__, code
    if type(exc).__module__.startswith("sqlalchemy"):
        return _database_message(exc)  # type: ignore[arg-type]
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"{_where(exc, args)}not {exc.encoding} text (byte "
            f"0x{exc.object[exc.start]:02x} at offset {exc.start}: {exc.reason})",
            BAD_INPUT,
        )
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"{_where(exc, args)}line {exc.lineno} column {exc.colno}: not valid JSON "
            f"({exc.msg})",
            BAD_INPUT,
        )
    if isinstance(exc, RecursionError):
        return f"{_where(exc, args)}nested too deeply to be read", BAD_INPUT
    if isinstance(exc, csv.Error):
        return f"{_where(exc, args)}not valid CSV ({exc})", BAD_INPUT
    if isinstance(exc, OSError):
        name = exc.filename or _where(exc, args).rstrip(": ") or "file"
        reason = exc.strerror or _first_line(str(exc)) or type(exc).__name__
        return f"{name}: {reason}", BAD_INPUT if isinstance(exc, _BAD_FILE) else FAILURE
    if isinstance(exc, MemoryError):
        return f"{_where(exc, args)}out of memory", FAILURE
    if type(exc).__name__ == "InvalidDicomError":
        return f"{_where(exc, args)}not a DICOM file ({_first_line(str(exc))})", 2
    return (
        f"internal error: {type(exc).__name__}: {_first_line(str(exc))} "
        "(rerun as `rtcohort --debug ...` for the traceback)",
        FAILURE,
    )


def _passes_through(exc: BaseException) -> bool:
    """Tell whether click/typer turn ``exc`` into an exit or a usage message."""
    from typer import _click

    return isinstance(exc, typer.Exit | typer.Abort | _click.exceptions.ClickException)


class MappedGroup(TyperGroup):
    """The root group: maps an error that ends a command to one line and a code.

    ``--debug`` (an option of the root callback, in ``ctx.params``) turns the
    mapping off.
    """

    def invoke(self, ctx: Any) -> Any:
        """Invoke the command; map any error it raises (see :func:`describe`)."""
        args = [*ctx._protected_args, *ctx.args]
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _passes_through(exc) or ctx.params.get("debug"):
                raise
            message, code = describe(exc, args)
            _LOG.debug("command failed", exc_info=exc)
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(code) from None
