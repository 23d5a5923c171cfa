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
    centres: Annotated[int, typer.Option("--centres", min=1, max=20)] = 3,
    patients: Annotated[int, typer.Option("--patients", min=1, max=200)] = 6,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Stop before serving the web app.")
    ] = False,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8501,
    address: Annotated[str, typer.Option("--address")] = "127.0.0.1",
) -> None:
    """Run a synthetic cohort through the platform, create accounts, serve the app.

    Writes synthetic DICOM-RT under DATA_DIR/demo/dicom and the dose metrics to
    DATA_DIR/demo/dose_metrics.csv; creates one account per role per centre (password
    RTCOHORT_DEMO_PASSWORD, else generated and printed once); then serves the web app
    with the demo's keys (Ctrl-C stops it) unless --no-serve. Idempotent. Example:

        RTCOHORT_DATA_DIR=/tmp/demo rtcohort demo --centres 2 --patients 4
    """
    from pydantic import SecretStr
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from omop.errors import RTCohortError
    from rtcohort.demo import run_demo
    from rtcohort.demo_accounts import demo_password
    from rtcohort.settings import get_settings

    settings = get_settings()
    password, generated = demo_password(os.environ.get("RTCOHORT_DEMO_PASSWORD"))
    if settings.admin_password is None:  # a new admin gets the demo password too
        settings.admin_password = SecretStr(password)
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
    tox = Table(title="CTCAE Pneumonitis (patients per grade)")
    tox.add_column("timepoint")
    for g in range(4):
        tox.add_column(f"grade {g}", justify="right")
    for tp in ("m3", "m6"):
        tox.add_row(tp, *(str(report.toxicity[(tp, g)]) for g in range(4)))
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
    console.print(f"demo finished in {elapsed_s:.1f} s")


def register(app: typer.Typer) -> None:
    """Add ``rtcohort demo`` to the root app."""
    app.command("demo")(demo)
