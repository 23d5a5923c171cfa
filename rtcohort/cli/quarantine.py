"""`rtcohort quarantine`: held DICOM files, their reasons, and retrying them.

Registered by :mod:`rtcohort.cli.ingest` (the ingest command group).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from rtcohort.cli.common import fail
from rtcohort.cli.ingest_common import ingest_factory, ingest_session, print_summary

__all__ = ["register"]

quarantine_app = typer.Typer(
    help="Held DICOM files and their reasons.", no_args_is_help=True
)


def _quarantine_list(as_json: bool, all_items: bool) -> None:
    from cohort.operations import quarantine_items
    from rtcohort.settings import get_settings

    with ingest_session() as session:
        items = quarantine_items(
            session, get_settings().user, include_released=all_items
        )
        rows: list[dict[str, Any]] = [
            {
                "id": i.quarantine_id,
                "path": i.path,
                "reason_code": i.reason_code,
                "reason": i.reason,
                "received_at": i.received_at.isoformat(),
                "status": i.status,
            }
            for i in items
        ]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    typer.echo(f"{'id':>6}  {'reason_code':<28} {'received_at':<25} path")
    for r in rows:
        typer.echo(
            f"{r['id']:>6}  {r['reason_code']:<28} "
            f"{r['received_at'][:25]:<25} {r['path']}"
        )
        typer.echo(f"{'':>8}{r['reason']}")
    typer.echo(f"{len(rows)} item(s)")


def _quarantine_retry(
    ids: list[int], centre: str | None, key_file: Path | None
) -> None:
    from etl.ingest.catalogue import retry_items
    from omop.errors import RTCohortError
    from omop.ingest_tables import QuarantineItem
    from rtcohort.wiring import ingest_options

    with ingest_factory() as factory:
        with factory.begin() as session:
            first = session.get(QuarantineItem, ids[0])
            if first is None:
                fail(f"no quarantine item {ids[0]} (rtcohort quarantine list)")
            the_centre = centre or first.centre
        try:
            opts = ingest_options(the_centre, key_file)
            summary = retry_items(factory, ids, opts)
        except RTCohortError as exc:
            fail(str(exc))
    print_summary(summary)


def register(app: typer.Typer) -> None:
    """Register the ``quarantine`` commands on the root app."""

    @quarantine_app.command("list")
    def quarantine_list(
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        all_items: bool = typer.Option(False, "--all", help="Include released items."),
    ) -> None:
        """List held files with their reasons: ``rtcohort quarantine list --json``."""
        _quarantine_list(as_json, all_items)

    @quarantine_app.command("retry")
    def quarantine_retry(
        ids: list[int] = typer.Argument(..., help="Quarantine item id(s)."),
        centre: str | None = typer.Option(None, "--centre", help="Centre code."),
        key_file: Path | None = typer.Option(
            None, "--key-file", help="Needed for files held before pseudonymisation."
        ),
    ) -> None:
        """Retry held files: ``rtcohort quarantine retry 12``."""
        _quarantine_retry(ids, centre, key_file)

    app.add_typer(quarantine_app, name="quarantine")
