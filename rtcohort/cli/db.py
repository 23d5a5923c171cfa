"""`rtcohort db` and `rtcohort vocab` commands (owned by `omop`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rtcohort.cli.common import fail, open_engine

__all__ = ["register"]

db_app = typer.Typer(
    help="Create, migrate, check and describe the OMOP database.", no_args_is_help=True
)
vocab_app = typer.Typer(
    help="Vocabulary: load a full Athena download.", no_args_is_help=True
)
console = Console()


@db_app.command("upgrade")
def upgrade() -> None:
    """Migrate the database to the newest schema and seed the vocabulary.

    Idempotent: running it again changes nothing. Example:

        RTCOHORT_DATABASE_URL=postgresql+psycopg://me@db/rtcohort rtcohort db upgrade
    """
    from omop.database import upgrade as run_upgrade
    from omop.errors import RTCohortError

    engine = open_engine()
    started = time.perf_counter()
    try:
        report = run_upgrade(engine)
        from rtcohort.wiring import after_upgrade

        extra = after_upgrade(engine)
    except RTCohortError as exc:
        fail(str(exc))
    elapsed = time.perf_counter() - started
    console.print(
        f"database {engine.url.render_as_string(hide_password=True)} is at the newest "
        f"schema; seed added {report.concepts} concepts, {report.vocabularies} "
        f"vocabularies, {report.pending_maps} pending maps ({elapsed:.1f} s)"
    )
    for line in extra:
        console.print(line)


@db_app.command("check")
def check(
    extensions: Annotated[
        bool, typer.Option("--extensions", help="Also check survey_conduct.")
    ] = False,
) -> None:
    """Compare the live schema with the bundled OMOP CDM v5.4 spec.

    Prints `N/N tables conform` and every difference; exits 1 on any. Example:

        rtcohort db check
    """
    from omop.database import check_schema

    engine = open_engine()
    report = check_schema(engine, include_extensions=extensions)
    for table, problems in report.differences.items():
        for problem in problems:
            console.print(f"[red]{table}[/red]: {problem}", highlight=False)
    total = len(report.checked)
    console.print(f"{report.conforming}/{total} tables conform")
    if report.differences:
        raise typer.Exit(1)


@db_app.command("info")
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the backend, schema revision and row counts. Example: rtcohort db info."""
    from omop.database import database_info

    engine = open_engine()
    data = database_info(engine)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    console.print(
        f"database: {data['url']} ({data['backend']} {data['server_version']})"
    )
    console.print(
        f"schema revision: {data['revision'] or 'none (run rtcohort db upgrade)'}"
    )
    for table, count in data["rows"].items():
        console.print(f"  {table:<20} {count:>10,}")
    console.print("concepts by vocabulary:")
    for vocabulary, count in data["concepts_by_vocabulary"].items():
        console.print(f"  {vocabulary:<20} {count:>10,}")


@db_app.command("quality")
def quality(
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write DQD's JSON result layout.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report.")
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0,
            help="Seconds one statement of a check may run before it is cancelled "
            "and reported as that check's error (0: no limit).",
        ),
    ] = 300,
) -> None:
    """Run the DataQualityDashboard v5.4 checks and our RT checks.

    Prints a summary by category and the failing checks; exits 1 when a check fails
    its threshold or its SQL fails or runs longer than ``--timeout`` (known failures,
    listed with their reason, do not). Example:

        rtcohort db quality --json dqd.json --html dqd.html --timeout 120
    """
    from omop.errors import RTCohortError
    from rtcohort.quality_summary import quality_lines, run_quality_on

    engine = open_engine()
    try:
        report = run_quality_on(engine, timeout_seconds=timeout or None)
    except RTCohortError as exc:
        fail(str(exc))
    for line in quality_lines(report):
        console.print(line, highlight=False, soft_wrap=True)
    if json_out is not None:
        report.write_json(json_out)
    if html_out is not None:
        report.write_html(html_out)
    if report.failed or any(r.is_error for r in report.results):
        raise typer.Exit(1)


@db_app.command("gc")
def gc(
    grace_minutes: Annotated[
        float,
        typer.Option(
            "--grace-minutes",
            min=0,
            help="Keep files younger than this (a running import may own them).",
        ),
    ] = 60,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report only; remove nothing.")
    ] = False,
) -> None:
    """Remove orphan files of interrupted imports from the file store.

    A file is removed when no database row names its SHA-256 and it is older than
    the grace period; committed files are never touched (every import does the same
    at its start). Example:

        rtcohort db gc --grace-minutes 120
    """
    import datetime

    from omop.engine import session_factory
    from omop.filestore import FileStore
    from omop.filestore_gc import collect_garbage
    from rtcohort.settings import get_settings

    engine = open_engine()
    store = FileStore(get_settings().data_dir / "files")
    with session_factory(engine).begin() as session:
        report = collect_garbage(
            session,
            store,
            grace=datetime.timedelta(minutes=grace_minutes),
            dry_run=dry_run,
        )
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"{verb} {report.files} orphan file(s), {report.bytes:,} bytes; "
        f"{report.temporaries} temporary file(s); {report.kept_young} file(s) younger"
        f" than {grace_minutes:g} min kept",
        highlight=False,
    )


@vocab_app.command("load-athena")
def load_athena(
    folder: Annotated[Path, typer.Argument(help="Unzipped Athena download.")],
) -> None:
    """Load a full Athena download (tab-separated CONCEPT.csv etc.) in one transaction.

    Then re-points our field concepts and fills concept ids that were 0 (units, TG-263
    -> SNOMED CT). A malformed file rolls everything back. Example:

        rtcohort vocab load-athena ~/athena/vocabulary_download_v5
    """
    from rich.progress import Progress

    from omop.engine import session_factory
    from omop.errors import RTCohortError
    from omop.vocab.athena import load_athena as run_load

    engine = open_engine()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading", total=None)

        def on_progress(name: str, rows: int) -> None:
            progress.update(task, description=f"{name}: {rows:,} rows")

        try:
            with session_factory(engine).begin() as session:
                report = run_load(session, folder, progress=on_progress)
        except RTCohortError as exc:
            fail(f"{exc} (nothing was loaded)")
        except OSError as exc:
            fail(f"{folder}: {exc}")
    for name, rows in report.rows.items():
        console.print(f"{name}: {rows:,} rows")
    console.print(
        f"maps created: {report.maps_created}; field concepts re-pointed: "
        f"{report.field_concepts_repointed}; zero concept ids resolved: "
        f"{report.zeros_resolved}"
    )


def register(app: typer.Typer) -> None:
    """Register this area's commands on the root app."""
    app.add_typer(db_app, name="db")
    app.add_typer(vocab_app, name="vocab")
