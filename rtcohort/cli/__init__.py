"""The ``rtcohort`` command.

Each sub-module registers the commands of one package on the root app; commands import
their package lazily so that ``rtcohort --help`` starts fast. The root :data:`app`
(all commands) is built on first use; :func:`main` builds only the module of a command
listed in ``_ONE_MODULE`` (``rtcohort dvh`` imports no database, FHIR or statistics
package), and the full app for everything else. On that fast path, modules that
pydicom imports but the command does not use load only when first used
(:mod:`rtcohort.cli._lazy`).

The root group is :class:`rtcohort.cli.errors.MappedGroup`: an error that ends a
command becomes one line on stderr and exit code 2 (bad input) or 1 (failure);
``rtcohort --debug CMD`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from rtcohort.cli.errors import MappedGroup

__all__ = ["app", "main"]

# One module per owning package (ARCHITECTURE.md section 6); each defines register(app).
_COMMAND_MODULES = (
    "rtcohort.cli.db",
    "rtcohort.cli.dose",
    "rtcohort.cli.deid",
    "rtcohort.cli.instruments",
    "rtcohort.cli.cohort",
    "rtcohort.cli.ntcp",
    "rtcohort.cli.ingest",
    "rtcohort.cli.demo",
    "rtcohort.cli.serve",
    "rtcohort.cli.simulate",
)
#: Commands run with their own module only (a module registering two or more
#: commands, so that the app stays a group).
_ONE_MODULE = {"dvh": "rtcohort.cli.dose", "phantom": "rtcohort.cli.dose"}

app: typer.Typer  # built on first access (module __getattr__)
_built: dict[tuple[str, ...], typer.Typer] = {}


def _root_options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Show the traceback of an error instead of one line."
        ),
    ] = False,
) -> None:
    """Prospective radiotherapy outcome cohorts on the OMOP CDM."""


def _build(modules: Sequence[str]) -> typer.Typer:
    key = tuple(modules)
    if key not in _built:
        root = typer.Typer(
            name="rtcohort",
            help="Prospective radiotherapy outcome cohorts on the OMOP CDM.",
            no_args_is_help=True,
            add_completion=False,
            pretty_exceptions_enable=False,
            cls=MappedGroup,
        )
        root.callback()(_root_options)
        for name in modules:
            importlib.import_module(name).register(root)
        _built[key] = root
    return _built[key]


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        return _build(_COMMAND_MODULES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Run the ``rtcohort`` command line."""
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    module = _ONE_MODULE.get(command)
    if module:
        from rtcohort.cli._lazy import defer_imports

        defer_imports()
    _build((module,) if module else _COMMAND_MODULES)()
