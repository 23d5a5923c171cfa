"""`rtcohort` commands of DICOM-RT ingest: import, export, report, trigger.

The ``quarantine`` and ``mapping`` groups live in :mod:`rtcohort.cli.quarantine` and
:mod:`rtcohort.cli.mapping`; :func:`register` adds them in their place.

Commands that read patient data act as ``RTCOHORT_USER`` through the cohort
permission layer and are audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from rtcohort.cli.common import fail
from rtcohort.cli.ingest_common import ingest_factory, ingest_session, print_summary

__all__ = ["register"]

export_app = typer.Typer(help="Exports of loaded data.", no_args_is_help=True)
report_app = typer.Typer(help="Reports on loaded data.", no_args_is_help=True)
trigger_app = typer.Typer(
    help="Project rules on DICOM attributes.", no_args_is_help=True
)


def _progress() -> tuple[Any, Callable[[str, int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return bar, update


def _scheduler(address: str | None, workers: int) -> str | None:
    """Return the checked ``--scheduler`` address (exit 2 when it is unusable)."""
    from etl.errors import SchedulerError
    from etl.ingest.executor import check_scheduler_address

    if address is None:
        return None
    if workers != 1:
        fail("give --workers or --scheduler, not both")
    try:
        return check_scheduler_address(address)
    except SchedulerError as exc:
        fail(f"--scheduler: {exc}")


def _import(  # noqa: PLR0917
    path: Path | None,
    centre: str,
    key_file: Path,
    project: str | None,
    workers: int,
    scheduler: str | None,
    strict: bool,
    watch: Path | None,
    interval_s: float,
    cycles: int,
) -> None:
    from etl.errors import EtlError
    from etl.ingest.run import run_import
    from omop.errors import RTCohortError
    from rtcohort.wiring import ingest_options

    if (path is None) == (watch is None):
        fail("give PATH or --watch DIR (not both)")
    if workers < 1:
        fail("--workers must be at least 1")
    scheduler = _scheduler(scheduler, workers)
    target = path if path is not None else watch
    assert target is not None
    if not target.exists():
        fail(f"{target}: no such file or folder")
    try:
        opts = ingest_options(
            centre, key_file, workers=workers, scheduler=scheduler, project=project
        )
    except EtlError as exc:
        fail(f"{key_file}: {exc}")
    with ingest_factory() as factory:
        cycle = 0
        while True:
            cycle += 1
            bar, update = _progress()
            opts.progress = update
            with bar:
                try:
                    summary = run_import(factory, [target], opts)
                except RTCohortError as exc:  # refused: nothing read or written
                    fail(str(exc))
            print_summary(summary)
            if watch is None or (cycles and cycle >= cycles):
                break
            time.sleep(interval_s)
    if summary.lost:  # workers died: those datasets wait for the next run
        raise typer.Exit(1)
    if strict and (summary.quarantined.total() or summary.refused.total()):
        raise typer.Exit(1)


def _export_dose_metrics(  # noqa: PLR0917
    out: Path,
    project: str | None,
    centre: list[str],
    structure: list[str],
    metric: list[str],
    alpha_beta: float | None,
) -> None:
    from etl.dose.metrics import parse_metric
    from etl.errors import MetricSyntaxError
    from etl.store.export import dose_metric_table, write_csv
    from rtcohort.settings import get_settings
    from rtcohort.wiring import CohortExportAccess

    for m in metric:
        if m != "Volume[cc]":
            try:
                parse_metric(m)
            except MetricSyntaxError as exc:
                fail(f"--metric {exc}")
    if alpha_beta is not None and alpha_beta <= 0:
        fail("--alpha-beta must be > 0")
    with ingest_session() as session:
        access = CohortExportAccess(session, get_settings().user)
        table = dose_metric_table(
            session,
            access=access,
            project=project,
            centres=centre,
            structures=structure,
            metrics=metric,
            alpha_beta_gy=alpha_beta,
        )
    write_csv(out, table)
    typer.echo(
        f"wrote {len(table.rows)} row(s) of {len(table.person_ids)} patient(s) to {out}"
    )


def _report_structures(
    project: str | None, required: str | None, csv_out: Path | None
) -> None:
    from etl.store.export import structure_matrix, write_csv
    from rtcohort.settings import get_settings
    from rtcohort.wiring import CohortExportAccess

    names = [n.strip() for n in (required or "").split(",") if n.strip()]
    with ingest_session() as session:
        access = CohortExportAccess(session, get_settings().user)
        table = structure_matrix(
            session, access=access, project=project, required=names
        )
    if csv_out is not None:
        write_csv(csv_out, table)
        typer.echo(f"wrote {len(table.rows)} patient(s) to {csv_out}")
        return
    widths = [max(len(h), 4) for h in table.header]
    widths[0] = max([len(table.header[0])] + [len(r[0]) for r in table.rows])
    typer.echo("  ".join(h.ljust(w) for h, w in zip(table.header, widths, strict=True)))
    for row in table.rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def register(app: typer.Typer) -> None:
    """Register this area's commands on the root app."""
    from rtcohort.cli import mapping, quarantine

    @app.command("import")
    def import_cmd(  # noqa: PLR0917
        path: Path | None = typer.Argument(None, help="File or folder of DICOM files."),
        centre: str = typer.Option(..., "--centre", help="Centre code, e.g. AMS01."),
        key_file: Path = typer.Option(..., "--key-file", help="The centre key file."),
        project: str | None = typer.Option(
            None, "--project", help="Attach to project."
        ),
        workers: int = typer.Option(1, "--workers", help="Worker processes."),
        scheduler: str | None = typer.Option(
            None,
            "--scheduler",
            help="Dask scheduler tcp://HOST:PORT: read, pseudonymise and compute "
            "DVHs on its workers (shared file system); the database writes stay here.",
        ),
        strict: bool = typer.Option(
            False, "--strict", help="Exit 1 when anything was quarantined."
        ),
        watch: Path | None = typer.Option(
            None, "--watch", help="Import this inbox folder continuously."
        ),
        interval_s: float = typer.Option(10.0, "--interval-s", help="Watch interval."),
        cycles: int = typer.Option(0, "--cycles", hidden=True, help="Stop after N."),
    ) -> None:
        """Pseudonymise, check, compute DVHs and load DICOM-RT into OMOP.

        Idempotent: importing the same files again adds nothing. Example:

            rtcohort import incoming/ --centre AMS01 --key-file ams01.key --workers 2

        A backfill on a Dask cluster (files on a shared file system; a worker that
        dies loses nothing, the same command again loads what it left):

            rtcohort import in/ --centre AMS01 --key-file k.key --scheduler tcp://dask:8786
        """
        _import(
            path, centre, key_file, project, workers, scheduler, strict, watch,
            interval_s, cycles,
        )  # fmt: skip

    @export_app.command("dose-metrics")
    def export_dose_metrics(  # noqa: PLR0917
        out: Path = typer.Option(..., "--out", help="CSV file to write."),
        project: str | None = typer.Option(None, "--project", help="Project code."),
        centre: list[str] = typer.Option([], "--centre", help="Centre; repeat."),
        structure: list[str] = typer.Option([], "--structure", help="TG-263 name."),
        metric: list[str] = typer.Option([], "--metric", help="e.g. D95%[Gy]; repeat."),
        alpha_beta: float | None = typer.Option(
            None, "--alpha-beta", help="alpha/beta (Gy): metrics in EQD2."
        ),
    ) -> None:
        """Export dose metrics computed from the stored DVHs (audited).

        Example:

        rtcohort export dose-metrics --out m.csv --structure Heart --metric "V25Gy[%]"
        """
        _export_dose_metrics(out, project, centre, structure, metric, alpha_beta)

    @report_app.command("structures")
    def report_structures(
        project: str | None = typer.Option(None, "--project", help="Project code."),
        required: str | None = typer.Option(
            None, "--required", help="Comma-separated TG-263 names."
        ),
        csv_out: Path | None = typer.Option(None, "--csv", help="Write CSV here."),
    ) -> None:
        """Print the structure completeness matrix (cells 1, 0 or 2+).

        Example:

        rtcohort report structures --required Heart,Lung_L,Lung_R
        """
        _report_structures(project, required, csv_out)

    @trigger_app.command("add")
    def trigger_add(
        project: str = typer.Argument(..., help="Project code."),
        kind: str = typer.Option(..., "--kind", help="roi|empty-roi|tag"),
        pattern: str = typer.Option(..., "--pattern", help="Wildcard pattern."),
        keyword: str | None = typer.Option(None, "--keyword", help="DICOM keyword."),
        centre: str | None = typer.Option(None, "--centre", help="Only this centre."),
    ) -> None:
        """Add a rule that attaches arriving datasets to a project.

        Example:

        rtcohort trigger add HEART01 --kind empty-roi --pattern "HEART01*"
        """
        from cohort.operations import add_project_trigger
        from rtcohort.settings import get_settings

        with ingest_session() as session:
            row = add_project_trigger(
                session,
                get_settings().user,
                project,
                kind,
                pattern,
                keyword=keyword,
                centre=centre,
            )
            typer.echo(f"trigger {row.trigger_id} added for project {project}")

    quarantine.register(app)
    mapping.register(app)
    app.add_typer(export_app, name="export")
    app.add_typer(report_app, name="report")
    app.add_typer(trigger_app, name="trigger")
