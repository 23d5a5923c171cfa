"""`rtcohort` commands of DICOM-RT ingest: import, quarantine, mapping, export, report.

Commands that read patient data act as ``RTCOHORT_USER`` through the cohort
permission layer and are audited.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rtcohort.cli.common import fail, open_engine

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from etl.ingest.run import ImportSummary

__all__ = ["register"]

quarantine_app = typer.Typer(
    help="Held DICOM files and their reasons.", no_args_is_help=True
)
mapping_app = typer.Typer(
    help="ROI name -> TG-263 mapping rules.", no_args_is_help=True
)
export_app = typer.Typer(help="Exports of loaded data.", no_args_is_help=True)
report_app = typer.Typer(help="Reports on loaded data.", no_args_is_help=True)
trigger_app = typer.Typer(
    help="Project rules on DICOM attributes.", no_args_is_help=True
)


@contextmanager
def _factory() -> Iterator[sessionmaker[Session]]:
    from omop.engine import session_factory

    engine = open_engine()
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


@contextmanager
def _session() -> Iterator[Session]:
    """One transaction; an RTCohortError becomes one line on stderr and exit 2."""
    from omop.errors import RTCohortError

    with _factory() as factory:
        try:
            with factory.begin() as session:
                yield session
        except RTCohortError as exc:
            fail(str(exc))


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


def _print_summary(summary: ImportSummary) -> None:
    held = sum(summary.quarantined.values())
    typer.echo(
        f"datasets loaded {summary.loaded}, unchanged {summary.unchanged}, "
        f"held {summary.datasets_held}; files {summary.files}, quarantined {held}"
    )
    for reason, n in sorted(summary.quarantined.items()):
        typer.echo(f"  quarantined {reason}: {n}")
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


def _import(  # noqa: PLR0917
    path: Path | None,
    centre: str,
    key_file: Path,
    project: str | None,
    workers: int,
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
    target = path if path is not None else watch
    assert target is not None
    if not target.exists():
        fail(f"{target}: no such file or folder")
    try:
        opts = ingest_options(centre, key_file, workers=workers, project=project)
    except EtlError as exc:
        fail(f"{key_file}: {exc}")
    with _factory() as factory:
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
            _print_summary(summary)
            if watch is None or (cycles and cycle >= cycles):
                break
            time.sleep(interval_s)
    if strict and (summary.quarantined.total() or summary.refused.total()):
        raise typer.Exit(1)


def _quarantine_list(as_json: bool, all_items: bool) -> None:
    from cohort.operations import quarantine_items
    from rtcohort.settings import get_settings

    with _session() as session:
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

    with _factory() as factory:
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
    _print_summary(summary)


def _mapping_import(csv_file: Path) -> None:
    from cohort.operations import import_mapping_rules
    from etl.mapping.naming import MappingError, parse_rules_csv
    from rtcohort.settings import get_settings

    try:
        text = csv_file.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{csv_file}: cannot read ({exc.strerror})")
    try:
        rules = parse_rules_csv(text, str(csv_file))
    except MappingError as exc:
        fail(str(exc))
    with _session() as session:
        done = import_mapping_rules(
            session, get_settings().user, rules, source=csv_file.name, text=text
        )
    report = done.report
    typer.echo(
        f"rule set version {done.version}: {done.rules} rule(s); re-mapped "
        f"{report.structures_changed} of {report.structures_checked} loaded "
        "structures, "
        f"{report.metrics_rewritten} metric(s) recomputed from stored DVHs"
    )


def _mapping_test(name: str, centre: str | None) -> None:
    from etl.mapping.naming import current_rules, ensure_default_rules, suggest

    with _session() as session:
        ensure_default_rules(session)
        rules = current_rules(session)
    result = rules.map(name, centre)
    if result.tg263_name is None:
        hint = ", ".join(suggest(name)) or "none"
        typer.echo(f"{name!r}: unmapped (suggestions: {hint})")
        raise typer.Exit(1)
    how = (
        f"rule {result.rule.rule_id} ({result.rule.kind.value} "
        f"{result.rule.pattern!r}, {result.rule.centre or 'global'})"
        if result.rule
        else "is a TG-263 name"
    )
    typer.echo(f"{name!r} -> {result.tg263_name} via {how}; rule set v{rules.version}")


def _mapping_unmapped() -> None:
    from etl.mapping.naming import suggest
    from etl.store.report import unmapped_names

    with _session() as session:
        rows = unmapped_names(session)
    typer.echo("centre\troi_name\tstructures\tsuggestions")
    for r in rows:
        hints = ", ".join(suggest(r.roi_name))
        typer.echo(f"{r.centre}\t{r.roi_name}\t{r.structures}\t{hints}")


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
    with _session() as session:
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
    with _session() as session:
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

    @app.command("import")
    def import_cmd(  # noqa: PLR0917
        path: Path | None = typer.Argument(None, help="File or folder of DICOM files."),
        centre: str = typer.Option(..., "--centre", help="Centre code, e.g. AMS01."),
        key_file: Path = typer.Option(..., "--key-file", help="The centre key file."),
        project: str | None = typer.Option(
            None, "--project", help="Attach to project."
        ),
        workers: int = typer.Option(1, "--workers", help="Worker processes."),
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
        """
        _import(
            path, centre, key_file, project, workers, strict, watch, interval_s, cycles
        )

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

    @mapping_app.command("import")
    def mapping_import(csv_file: Path = typer.Argument(..., help="Rules CSV.")) -> None:
        """Import rules (centre,pattern,kind,tg263_name) as a new version; re-map data.

        Example: ``rtcohort mapping import rules.csv``
        """
        _mapping_import(csv_file)

    @mapping_app.command("test")
    def mapping_test(
        name: str = typer.Argument(..., help="A local ROI name."),
        centre: str | None = typer.Option(None, "--centre", help="Centre code."),
    ) -> None:
        """Show how a name maps: ``rtcohort mapping test "Sydän" --centre HUS``."""
        _mapping_test(name, centre)

    @mapping_app.command("unmapped")
    def mapping_unmapped() -> None:
        """List loaded ROI names no rule maps, with suggestions."""
        _mapping_unmapped()

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

        with _session() as session:
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

    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(mapping_app, name="mapping")
    app.add_typer(export_app, name="export")
    app.add_typer(report_app, name="report")
    app.add_typer(trigger_app, name="trigger")
