"""`rtcohort mapping`: ROI name -> TG-263 rules (import, test, unmapped names).

Registered by :mod:`rtcohort.cli.ingest` (the ingest command group).
"""

from __future__ import annotations

from pathlib import Path

import typer

from rtcohort.cli.common import fail
from rtcohort.cli.ingest_common import ingest_session

__all__ = ["register"]

mapping_app = typer.Typer(
    help="ROI name -> TG-263 mapping rules.", no_args_is_help=True
)


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
    with ingest_session() as session:
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
    for line in report.change_lines():
        typer.echo(line)


def _mapping_test(name: str, centre: str | None) -> None:
    from etl.mapping.naming import current_rules, ensure_default_rules, suggest

    with ingest_session() as session:
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

    with ingest_session() as session:
        rows = unmapped_names(session)
    typer.echo("centre\troi_name\tstructures\tsuggestions")
    for r in rows:
        hints = ", ".join(suggest(r.roi_name))
        typer.echo(f"{r.centre}\t{r.roi_name}\t{r.structures}\t{hints}")


def register(app: typer.Typer) -> None:
    """Register the ``mapping`` commands on the root app."""

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

    app.add_typer(mapping_app, name="mapping")
