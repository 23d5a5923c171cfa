"""`rtcohort ntcp fit|predict|models`: NTCP models on a cohort CSV (``ntcp``)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]

ntcp_app = typer.Typer(
    name="ntcp",
    help="NTCP models: fit LKB/logistic models, apply published models.",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@ntcp_app.command("fit")
def fit(  # noqa: PLR0917
    cohort: Path | None = typer.Option(
        None,
        "--cohort",
        help="CSV: patient_id, n_fractions, dvh, outcome[, covariates].",
    ),
    model: str = typer.Option("lkb", "--model", help="lkb or logistic."),
    alpha_beta: float | None = typer.Option(
        None, "--alpha-beta", help="Use per-bin EQD2 with this alpha/beta [Gy]."
    ),
    fix_n: float | None = typer.Option(
        None, "--fix-n", help="Fix the volume parameter n."
    ),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="Logistic dose metric: gEUD (default) or e.g. Mean[Gy], V20Gy[%].",
    ),
    covariates: str | None = typer.Option(
        None, "--covariates", help="Comma-separated covariate columns (logistic only)."
    ),
    bootstrap: int = typer.Option(
        0, "--bootstrap", help="Bootstrap samples (optimism)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the bootstrap."),
    json_out: Path = typer.Option(
        ..., "--json", help="Write the fitted model JSON here."
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Write an HTML (or .md) TRIPOD+AI model report here."
    ),
    from_db: bool = typer.Option(False, "--from-db", help="Read the cohort from OMOP."),
    organ: str | None = typer.Option(
        None, "--organ", help="TG-263 organ (with --from-db)."
    ),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="e.g. ctcae:Pneumonitis>=2@365d or qlqc30:FA-10@m12."
    ),
    project: str | None = typer.Option(
        None, "--project", help="Project code (with --from-db)."
    ),
    centre: str | None = typer.Option(
        None, "--centre", help="Centre code (with --from-db; not for researchers)."
    ),
    site: str | None = typer.Option(
        None, "--site", help="Treatment site, e.g. lung (with --from-db)."
    ),
) -> None:
    """Fit an NTCP model and write it (with provenance) as JSON.

    Example: rtcohort ntcp fit --cohort lungs.csv --model lkb --alpha-beta 3
    --json lkb.json --report lkb.html

    From OMOP (as RTCOHORT_USER, audited): rtcohort ntcp fit --from-db --organ Lungs
    --endpoint 'ctcae:Pneumonitis>=2@365d' --project LUNG1 --model lkb --json lkb.json
    """
    from ntcp.endpoints import parse_endpoint
    from ntcp.errors import NtcpError
    from ntcp.workflow import fit_cohort

    try:
        if endpoint is not None:
            parse_endpoint(endpoint)
        if model not in {"lkb", "logistic"}:
            raise _fail(f"--model must be lkb or logistic, got {model!r}")
        names = [c.strip() for c in (covariates or "").split(",") if c.strip()]
        if names and model != "logistic":
            raise _fail("--covariates applies to --model logistic only")
        table, dataset = _fit_table(
            cohort,
            names,
            from_db=from_db,
            organ=organ,
            endpoint=endpoint,
            project=project,
            centre=centre,
            site=site,
            alpha_beta=alpha_beta,
        )
        progress_cb, done = _progress(bootstrap)
        try:
            result, p, dose_axis, dose_label = fit_cohort(
                table,
                model,
                alpha_beta_gy=alpha_beta,
                fix_n=fix_n,
                metric=metric,
                covariates=names,
                n_bootstrap=bootstrap,
                seed=seed,
                progress=progress_cb,
            )
        finally:
            done()
    except NtcpError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{exc.filename or cohort}: {exc.strerror or exc}") from None
    _record_source(result, cohort, organ, endpoint, dataset)
    json_out.write_text(json.dumps(result, indent=2, allow_nan=True) + "\n", "utf-8")
    if report is not None:
        _write_report(report, result, table.outcome, p, dose_axis, dose_label)
    _print_summary(result)


def _fit_table(
    cohort: Path | None,
    names: list[str],
    *,
    from_db: bool,
    organ: str | None,
    endpoint: str | None,
    project: str | None,
    centre: str | None,
    site: str | None,
    alpha_beta: float | None,
) -> tuple[Any, dict[str, Any] | None]:
    """Return the cohort table to fit, and the dataset summary when read from OMOP."""
    from ntcp.cohort_csv import read_cohort_csv

    if from_db:
        if cohort is not None:
            raise _fail("--cohort and --from-db exclude each other")
        if not organ or not endpoint:
            raise _fail("--from-db needs --organ and --endpoint")
        return _from_db(organ, endpoint, project, centre, site, alpha_beta, names)
    if project or centre or site:
        raise _fail("--project, --centre and --site need --from-db")
    if cohort is None:
        raise _fail("--cohort FILE.csv is required (or --from-db)")
    return read_cohort_csv(cohort, covariates=names), None


def _record_source(
    result: dict[str, Any],
    cohort: Path | None,
    organ: str | None,
    endpoint: str | None,
    dataset: dict[str, Any] | None,
) -> None:
    """Add organ, endpoint, dataset and the provenance source to the model JSON."""
    if organ:
        result["organ"] = organ
    if endpoint:
        result["endpoint"] = endpoint
    if dataset is not None:
        result["dataset"] = dataset
        result["provenance"]["source"] = (
            f"omop: organ {organ}, endpoint {endpoint}, user {dataset['user']}"
        )
    else:
        result["provenance"]["source"] = str(cohort)


def _from_db(  # noqa: PLR0917
    organ: str,
    endpoint: str,
    project: str | None,
    centre: str | None,
    site: str | None,
    alpha_beta: float | None,
    covariates: list[str],
) -> tuple[Any, dict[str, Any]]:
    """Extract the cohort from OMOP as RTCOHORT_USER (the read is audited)."""
    import math

    from sqlalchemy.exc import SQLAlchemyError

    from ntcp.dataset import COVARIATES, DatasetSpec, extract_dataset
    from omop.engine import session_factory
    from omop.errors import RTCohortError
    from rtcohort.cli.common import open_engine
    from rtcohort.settings import get_settings

    spec = DatasetSpec(
        organ=organ,
        endpoint=endpoint,
        project=project,
        centre=centre,
        site=site,
        alpha_beta_gy=alpha_beta,
    )
    username = get_settings().user
    engine = open_engine()
    try:
        with session_factory(engine).begin() as session:
            ds = extract_dataset(session, username, spec)
    except RTCohortError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(
            f"database: {type(exc).__name__} (is it upgraded? rtcohort db upgrade)"
        ) from None
    finally:
        engine.dispose()
    summary = ds.summary()
    summary["user"] = username
    excluded = ", ".join(f"{k} {v}" for k, v in summary["excluded"].items())
    typer.echo(
        f"dataset: {summary['n_selected']} selected, {summary['n_included']} included "
        f"({summary['n_events']} events), {summary['n_excluded']} excluded"
        + (f" ({excluded})" if excluded else "")
    )
    if not ds.table.patient_ids:
        raise _fail(
            "no patient qualifies for the dataset"
            + (f": {excluded}" if excluded else "")
        )
    table = ds.table
    for name in covariates:
        if name not in COVARIATES or name not in table.covariates.columns:
            usable = [c for c in COVARIATES if c in table.covariates.columns]
            raise _fail(
                f"--covariates {name}: not available from OMOP here (use "
                f"{', '.join(usable)})"
            )
        unknown = sum(1 for v in table.covariates[name] if not math.isfinite(v))
        if unknown:
            raise _fail(f"--covariates {name}: unknown for {unknown} patient(s)")
    return table, summary


def _progress(total: int) -> tuple[Any, Any]:
    if total <= 0:
        return None, lambda: None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task("bootstrap", total=total)
    bar.start()
    return (lambda k: bar.update(task, completed=k)), bar.stop


def _write_report(  # noqa: PLR0917
    path: Path, result: dict[str, Any], y: Any, p: Any, dose: Any, label: str
) -> None:
    import numpy as np

    from ntcp.report import build_report, render_html, render_markdown

    content = build_report(result, y, p, dose, label)
    if path.suffix.lower() in {".md", ".markdown"}:
        path.write_text(render_markdown(content), "utf-8")
        return
    curve_x = curve_p = None
    if result["model"] == "lkb":
        from scipy.special import ndtr

        t = result["parameters"]["td50_gy"]["estimate"]
        m = result["parameters"]["m"]["estimate"]
        curve_x = np.linspace(0.0, float(np.max(dose)) * 1.05, 200)
        curve_p = ndtr((curve_x - t) / (m * t))
    elif not result.get("covariates"):
        from scipy.special import expit

        par = result["parameters"]
        curve_x = np.linspace(0.0, float(np.max(dose)) * 1.05, 200)
        curve_p = expit(
            par["intercept"]["estimate"] + par[result["metric"]]["estimate"] * curve_x
        )
    path.write_text(render_html(content, curve_x, curve_p), "utf-8")


def _print_summary(result: dict[str, Any]) -> None:
    lines = [
        f"{result['model']} model: {result['n_patients']} patients, "
        f"{result['n_events']} events, log-likelihood {result['log_likelihood']:.3f}"
    ]
    for name, par in result["parameters"].items():
        ci = par.get("ci95")
        if par.get("fixed"):
            interval = "(fixed)"
        elif ci is None:
            interval = ""
        else:
            lo, hi = (("open" if v is None else f"{v:.4g}") for v in ci)
            interval = f"95% CI {lo} .. {hi}"
        lines.append(f"  {name:>12} = {par['estimate']:.4g}  {interval}")
    cal = result["calibration"]
    lines.append(
        f"  apparent AUC {result['auc']:.3f}, calibration slope {cal['slope']:.3f}, "
        f"intercept {cal['intercept']:.3f}"
    )
    if "validation" in result:
        v = result["validation"]
        lines.append(
            f"  optimism-corrected ({v['n_bootstrap']} bootstraps, "
            f"{v['n_failed']} failed): "
            f"AUC {v['auc']:.3f}, slope {v['calibration']['slope']:.3f}, "
            f"intercept {v['calibration']['intercept']:.3f}"
        )
    for w in result.get("warnings", []):
        lines.append(f"  warning: {w}")
    typer.echo("\n".join(lines))


@ntcp_app.command("predict")
def predict(
    model: str = typer.Option(..., "--model", help="Registry model id or fitted JSON."),
    cohort: Path = typer.Option(
        ..., "--cohort", help="CSV with patient_id, n_fractions, dvh."
    ),
    out: Path = typer.Option(..., "--out", help="Output CSV: patient_id, ntcp."),
) -> None:
    """Apply a published or fitted model to a cohort.

    Example: rtcohort ntcp predict --model quantec2010_rectum_grade2 --cohort rectum.csv
    --out ntcp.csv
    """
    from ntcp.cohort_csv import read_cohort_csv
    from ntcp.errors import NtcpError
    from ntcp.workflow import predict_cohort, required_columns

    try:
        extra = required_columns(model)
        table = read_cohort_csv(cohort, covariates=extra, require_outcome=False)
        p = predict_cohort(model, table)
    except NtcpError as exc:
        raise _fail(str(exc).strip('"')) from None
    except OSError as exc:
        raise _fail(f"{exc.filename or cohort}: {exc.strerror or exc}") from None
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["patient_id", "ntcp"])
        for pid, value in zip(table.patient_ids, p, strict=True):
            writer.writerow([pid, f"{value:.6g}"])
    typer.echo(f"wrote NTCP of {len(table.patient_ids)} patients to {out}")


@ntcp_app.command("models")
def models(
    as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON."),
) -> None:
    """List the published-model registry.

    Example: rtcohort ntcp models
    """
    from ntcp.registry import list_models

    items = list_models()
    if as_json:
        sys.stdout.write(
            json.dumps([m.model_dump(mode="json") for m in items], indent=2) + "\n"
        )
        return
    for m in items:
        if m.form == "lkb":
            p = m.parameters
            par = f"TD50 {p['td50_gy']} Gy, m {p['m']}, n {p['n']}"
        else:
            coef = ", ".join(
                f"{v:+g}*{k}" for k, v in m.parameters["coefficients"].items()
            )
            par = f"logit = {m.parameters['intercept']:g} {coef}"
        dose = (
            "physical" if m.alpha_beta_gy is None else f"EQD2 a/b {m.alpha_beta_gy:g}"
        )
        typer.echo(f"{m.id:38} {m.form:8} {'+'.join(m.organ):28} {par}  [{dose}]")
        flag = "" if m.confirmed else " [unconfirmed: not offered as a default]"
        typer.echo(f"{'':38} {m.endpoint}; {m.citation[:60]}...{flag}")


def register(app: typer.Typer) -> None:
    """Register this area's commands on the root app."""
    app.add_typer(ntcp_app, name="ntcp")
