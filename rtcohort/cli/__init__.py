"""The ``rtcohort`` command.

Each sub-module registers the commands of one package on the root app; commands import
their package lazily so that ``rtcohort --help`` starts fast.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="rtcohort",
    help="Prospective radiotherapy outcome cohorts on the OMOP CDM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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
)

for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Run the ``rtcohort`` command line."""
    app()
