"""`rtcohort demo`: a synthetic multi-centre cohort through the whole platform."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rtcohort.cli.common import fail, open_engine

if TYPE_CHECKING:
    from rtcohort.demo import DemoReport

__all__ = ["register"]

console = Console()


def demo(  # noqa: PLR0917
    centres: Annotated[int, typer.Option("--centres", min=1, max=20)] = 5,
    patients: Annotated[
        int, typer.Option("--patients", min=1, max=200, help="Patients per centre.")
    ] = 40,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Stop before serving the web app.")
    ] = False,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset", help="Delete the demo database and data directory first."
        ),
    ] = False,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8501,
    address: Annotated[str, typer.Option("--address")] = "127.0.0.1",
) -> None:
    """Run a synthetic national cohort through the platform, then serve the app.

    Simulates --centres x --patients patients of four sites (`rtcohort simulate`),
    writing DICOM-RT and FHIR under DATA_DIR/demo/sim; records consent; sends the
    DICOM with a C-STORE SCU to the receiver on loopback (pseudonymised on arrival
    into DATA_DIR/demo/inbox) and imports it; imports toxicity and PROMs; exports the
    dose metrics to DATA_DIR/demo/dose_metrics.csv; creates one account per role per
    centre (password RTCOHORT_DEMO_PASSWORD, else generated and printed once); runs
    `db quality` (exit 1 when a check fails its threshold, known failures excepted);
    then serves the web app (Ctrl-C stops it) unless --no-serve. A second run reuses
    the demo database and adds nothing; --reset starts over. Example:

        RTCOHORT_DATA_DIR=/tmp/demo rtcohort demo --centres 2 --patients 4
    """
    from pydantic import SecretStr
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from omop.errors import RTCohortError
    from rtcohort.demo import reset_demo, run_demo
    from rtcohort.demo_accounts import demo_password
    from rtcohort.settings import get_settings

    settings = get_settings()
    password, generated = demo_password(os.environ.get("RTCOHORT_DEMO_PASSWORD"))
    if settings.admin_password is None:  # a new admin gets the demo password too
        settings.admin_password = SecretStr(password)
    engine = open_engine()
    if reset:
        try:
            reset_demo(engine, settings.data_dir)
        except ValueError as exc:
            fail(str(exc))
        console.print(f"--reset: demo database and {settings.data_dir} deleted")
        engine = open_engine()
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
        console=console, transient=True,
    ) as bar:  # fmt: skip
        tasks: dict[str, int] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = int(bar.add_task(step, total=total))
            bar.update(tasks[step], completed=done, total=total)  # type: ignore[arg-type]

        try:
            report = run_demo(
                engine, settings.data_dir, centres=centres, patients=patients,
                seed=seed, username=settings.user, progress=progress,
                accounts_password=password,
            )  # fmt: skip
        except RTCohortError as exc:
            fail(str(exc))
    _print(report, time.perf_counter() - started)
    _print_accounts(report, password if generated else None)
    engine.dispose()
    if report.quality_failed:
        console.print(
            f"error: {report.quality_failed} data quality check(s) fail their "
            "threshold; not serving"
        )
        raise typer.Exit(1)
    if not no_serve:
        from rtcohort.cli.serve import run_server

        code = run_server(port, address, settings.data_dir / "keys")
        if code:
            raise typer.Exit(code)


def _print_accounts(report: DemoReport, generated: str | None) -> None:
    t = Table(title="Web app accounts")
    for col in ("user", "role", "centre", "new"):
        t.add_column(col)
    for a in report.accounts:
        t.add_row(a.username, a.role, a.centre, "yes" if a.created else "")
    console.print(t)
    if generated is not None and any(a.created for a in report.accounts):
        console.print(
            f"password of the new accounts: {generated} (shown once; set "
            "RTCOHORT_DEMO_PASSWORD to choose it)"
        )
    elif os.environ.get("RTCOHORT_DEMO_PASSWORD"):
        console.print("password of the new accounts: RTCOHORT_DEMO_PASSWORD")


def _print(report: DemoReport, elapsed_s: float) -> None:
    from rtcohort.demo import DEMO_METRICS

    for line in report.messages:
        console.print(line)
    t = Table(title="Centres")
    for col in ("centre", "enrolled", "consented", "declined", "rate",
                "RT sets", "held files", "QLQ base", "QLQ m3"):  # fmt: skip
        t.add_column(col, justify="left" if col == "centre" else "right")
    for c in report.centres:
        t.add_row(
            c.centre, str(c.enrolled), str(c.consented), str(c.declined),
            f"{c.rate:.0%}" if c.rate is not None else "-",
            str(c.loaded), str(c.held_files),
            f"{c.proms.get('baseline', 0)}/{c.consented}",
            f"{c.proms.get('m3', 0)}/{c.consented}",
        )  # fmt: skip
    console.print(t)
    held = ", ".join(f"{k} {v}" for k, v in sorted(report.held.items())) or "none"
    unmapped = ", ".join(sorted(report.unmapped)) or "none"
    console.print(
        f"persons {report.persons}; datasets loaded this run "
        f"{report.datasets_loaded_now}, unchanged {report.datasets_unchanged}; "
        f"held files: {held}"
    )
    console.print(f"structures mapped to TG-263 {report.mapped}; unmapped: {unmapped}")
    tox = Table(title="CTCAE toxicity (patients per worst grade)")
    tox.add_column("term")
    for g in range(5):
        tox.add_column(f"grade {g}", justify="right")
    for term in sorted({t for t, _ in report.toxicity}):
        tox.add_row(term, *(str(report.toxicity[(term, g)]) for g in range(5)))
    console.print(tox)
    if report.metrics is not None:
        cols = report.metrics.header
        m = Table(title="Dose metrics (first rows; all in the CSV)")
        for name in ("person_source_value", "tg263_name", *DEMO_METRICS):
            m.add_column(name.replace("person_source_value", "pseudonym"),
                         justify="left" if name[0].islower() else "right")  # fmt: skip
        idx = [
            cols.index(n) for n in ("person_source_value", "tg263_name", *DEMO_METRICS)
        ]
        shown = [r for r in report.metrics.rows if r[cols.index("tg263_name")] in
                 {"PTV", "Lung_L", "Heart"}][:9]  # fmt: skip
        for row in shown:
            m.add_row(
                row[idx[0]][:14] + "...", row[idx[1]],
                *(f"{float(row[i]):.1f}" if row[i] else "-" for i in idx[2:]),
            )  # fmt: skip
        console.print(m)
        console.print(
            f"{len(report.metrics.rows)} rows of dose metrics (as admin, audited) "
            f"written to {report.csv_path}"
        )
    _print_timing(report, elapsed_s)


def _print_timing(report: DemoReport, elapsed_s: float) -> None:
    if report.reused:
        console.print(
            "reused the completed demo database (nothing added; --reset starts over)"
        )
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    console.print(f"phases: {phases}")
    if report.patients:
        console.print(
            f"{report.patients} patients simulated; {report.files_sent} files sent "
            f"through the DICOM receiver ({report.files_refused} refused)"
        )
    rate = report.ingest_patients_per_min
    if rate is not None:
        console.print(f"ingest (send + import): {rate:.0f} patients/min")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"demo finished in {elapsed_s:.1f} s (load average {load})")


def register(app: typer.Typer) -> None:
    """Add ``rtcohort demo`` to the root app."""
    app.command("demo")(demo)
