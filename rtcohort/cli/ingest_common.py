"""Shared by the DICOM-RT ingest commands: sessions and the import summary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from rtcohort.cli.common import fail, open_engine

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from etl.ingest.run import ImportSummary

__all__ = ["ingest_factory", "ingest_session", "print_summary"]


@contextmanager
def ingest_factory() -> Iterator[sessionmaker[Session]]:
    """Yield a session factory on the configured database; dispose it at the end."""
    from omop.engine import session_factory

    engine = open_engine()
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


@contextmanager
def ingest_session() -> Iterator[Session]:
    """One transaction; an RTCohortError becomes one line on stderr and exit 2."""
    from omop.errors import RTCohortError

    with ingest_factory() as factory:
        try:
            with factory.begin() as session:
                yield session
        except RTCohortError as exc:
            fail(str(exc))


def print_summary(summary: ImportSummary) -> None:
    """Print what an import or retry did (counts by reason, warnings, unmapped)."""
    held = sum(summary.quarantined.values())
    typer.echo(
        f"datasets loaded {summary.loaded}, unchanged {summary.unchanged}, "
        f"held {summary.datasets_held}; files {summary.files}, quarantined {held}"
    )
    for reason, n in sorted(summary.quarantined.items()):
        typer.echo(f"  quarantined {reason}: {n}")
    if summary.lost:
        typer.echo(
            f"  not computed, Dask workers died: {summary.lost} dataset(s) "
            "(nothing of them written; run the import again to load them)"
        )
    if summary.courses:
        typer.echo(f"  courses of several plans summed: {summary.courses}")
    if summary.orphans_removed:
        typer.echo(
            f"  orphan files of an interrupted import removed: "
            f"{summary.orphans_removed} ({summary.orphan_bytes:,} bytes)"
        )
    for reason, n in sorted(summary.refused.items()):
        typer.echo(f"  refused {reason}: {n} (not read)")
    for source in summary.refused_sources[:10]:
        typer.echo(f"    {source}")
    for reason, n in sorted(summary.warnings.items()):
        typer.echo(f"  warning {reason}: {n}")
    for project, n in sorted(summary.attached.items()):
        typer.echo(f"  attached to {project}: {n}")
    names = sorted(summary.unmapped)
    typer.echo(
        f"structures unmapped {sum(summary.unmapped.values())}"
        + (
            f" ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})"
            if names
            else ""
        )
    )
