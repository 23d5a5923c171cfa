"""`rtcohort simulate`: a synthetic national cohort with known truth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from rtcohort.cli.common import fail

__all__ = ["register"]


def _keys(keys_dir: Path, centres: list[str]) -> dict[str, object]:
    from etl.deid.keys import load_key, write_key
    from omop.private_files import make_private_dirs
    from rtcohort.wiring import new_centre_key

    make_private_dirs(keys_dir)
    out: dict[str, object] = {}
    for code in centres:
        path = keys_dir / f"{code}.key"
        if not path.exists():
            write_key(new_centre_key(code), path)
        out[code] = load_key(path, code)
    return out


def simulate(  # noqa: PLR0917
    centres: Annotated[int, typer.Option("--centres", help="Number of centres.")] = 12,
    patients: Annotated[
        int, typer.Option("--patients", help="Mean patients per centre.")
    ] = 2400,
    years: Annotated[float, typer.Option("--years", help="Accrual years.")] = 15.0,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    dicom: Annotated[
        Path | None, typer.Option("--dicom", help="Write DICOM-RT and FHIR here.")
    ] = None,
    into_db: Annotated[
        bool, typer.Option("--into-db", help="Write OMOP rows into the database.")
    ] = False,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="Truth JSON (default: truth.json beside output)."),
    ] = None,
    recruitment: Annotated[float, typer.Option("--recruitment")] = 0.5,
    completion: Annotated[float, typer.Option("--completion")] = 0.6,
    sites: Annotated[
        str | None, typer.Option("--sites", help="breast,prostate,head_neck,lung")
    ] = None,
    fractionation: Annotated[
        list[str] | None,
        typer.Option("--fractionation", help="SITE=DOSE/FRACTIONS (repeatable)."),
    ] = None,
    outlier_or: Annotated[float, typer.Option("--outlier-or")] = 3.0,
    keys_dir: Annotated[
        Path | None,
        typer.Option("--keys-dir", help="Centre keys for --into-db (created if new)."),
    ] = None,
) -> None:
    """Simulate a national cohort: centres, four sites, LKB toxicity, QLQ-C30.

    --patients is per centre (centres differ in size around it). Writes the truth
    (parameters, the outlier centre, every patient's NTCP) to --truth, by default
    truth.json in --dicom, else DATA_DIR/simulate/truth.json. Example:

        rtcohort simulate --centres 2 --patients 20 --seed 1 --dicom sim/ --into-db
    """
    from cohort.simulate.params import SimulationParams
    from cohort.simulate.run import run_simulation
    from omop.errors import RTCohortError
    from rtcohort.settings import get_settings

    try:
        params = SimulationParams.build(
            fractionation=fractionation or (), sites=sites, centres=centres,
            patients=patients, years=years, seed=seed, recruitment=recruitment,
            completion=completion, outlier_odds_ratio=outlier_or,
        )  # fmt: skip
    except RTCohortError as exc:
        fail(str(exc))
    settings = get_settings()
    truth_path = truth or (
        dicom / "truth.json" if dicom else settings.data_dir / "simulate" / "truth.json"
    )
    started = time.perf_counter()
    factory = keys = store = engine = None
    if into_db:
        from cohort.simulate.demo_cohort import centre_codes
        from omop.engine import session_factory
        from omop.filestore import FileStore
        from rtcohort.cli.common import open_engine

        engine = open_engine()
        factory = session_factory(engine)
        keys = _keys(
            keys_dir or settings.data_dir / "simulate" / "keys", centre_codes(centres)
        )
        store = FileStore(settings.data_dir / "files")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:  # fmt: skip
        tasks: dict[str, int] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = int(bar.add_task(step, total=total))
            bar.update(tasks[step], completed=done, total=total)  # type: ignore[arg-type]

        try:
            report = run_simulation(
                params, truth_path=truth_path, dicom_dir=dicom,
                session_factory=factory, keys=keys, store=store,  # type: ignore[arg-type]
                progress=progress,
            )  # fmt: skip
        except RTCohortError as exc:
            fail(str(exc))
        finally:
            if engine is not None:
                engine.dispose()
    cohort = report.cohort
    consented = sum(p.consented for p in cohort.patients)
    typer.echo(
        f"simulated {len(cohort.patients)} patients at {len(cohort.practices)} centres "
        f"({consented} consented); outlier centre: {cohort.outlier_centre or '-'}"
    )
    if dicom is not None:
        typer.echo(f"DICOM-RT and FHIR: {dicom}")
    if report.counts is not None:
        c = report.counts
        typer.echo(
            f"into the database: {c.persons} persons ({c.skipped} already there), "
            f"{c.datasets} RT datasets, {c.metrics} dose metrics, {c.gradings} "
            f"gradings, {c.questionnaires} questionnaires, {c.deaths} deaths; "
            f"{report.load_rate_patients_per_s:.1f} patients/s"
        )
    typer.echo(f"truth: {truth_path} ({time.perf_counter() - started:.1f} s)")


def register(app: typer.Typer) -> None:
    """Add ``rtcohort simulate`` to the root app."""
    app.command("simulate")(simulate)
