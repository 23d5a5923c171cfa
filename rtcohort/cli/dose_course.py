"""`rtcohort dvh` with several --rtdose: the course dose (physical and EQD2 sums).

Wiring only: :func:`etl.dicom.course_table.course_rows` sums and computes; this
module checks the options, writes the CSV (the columns of one dose, then
``dose_kind`` and ``alpha_beta_gy``) and turns a refusal into an exit code.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rtcohort.cli.dose import (
    _COLUMNS,
    CSV_HEADER_COMMENT,
    _cell,
    _warn,
    _write_csv,
)

if TYPE_CHECKING:
    from etl.dicom.course_table import CourseTable

__all__ = ["COURSE_COLUMNS", "eqd2_usage_error", "parse_alpha_beta_roi", "run_course"]

#: Columns added after the metrics in course mode.
COURSE_COLUMNS = ["dose_kind", "alpha_beta_gy"]


def eqd2_usage_error(
    alpha_beta: float | None, fractions: list[int], n_doses: int
) -> str | None:
    """Return what is wrong with --alpha-beta / --fractions (None when fine).

    The i-th --fractions pairs with the i-th --rtdose (one --fractions for a folder).
    """
    n_doses = max(n_doses, 1)
    if alpha_beta is not None and not fractions:
        return (
            "--alpha-beta needs --fractions: EQD2 needs the number of fractions of "
            f"each of the {n_doses} --rtdose"
        )
    if fractions and alpha_beta is None:
        return "--alpha-beta and --fractions go together"
    if fractions and len(fractions) != n_doses:
        return (
            f"--fractions given {len(fractions)} time(s) for {n_doses} --rtdose: the "
            "i-th --fractions pairs with the i-th --rtdose"
        )
    if alpha_beta is not None and (alpha_beta <= 0 or min(fractions) < 1):
        return "--alpha-beta must be > 0 and --fractions >= 1"
    return None


def parse_alpha_beta_roi(
    items: list[str], alpha_beta: float | None
) -> dict[str, float] | str:
    """Parse ``NAME=VALUE`` items into ``{name: alpha/beta}``, or the usage error.

    Examples
    --------
    >>> parse_alpha_beta_roi(["PTV=10", "Spinal Cord=2"], 3.0)
    {'PTV': 10.0, 'Spinal Cord': 2.0}
    >>> parse_alpha_beta_roi(["PTV"], 3.0)
    "--alpha-beta-roi 'PTV': expected NAME=VALUE with VALUE > 0 (Gy)"
    """
    if items and alpha_beta is None:
        return "--alpha-beta-roi needs --alpha-beta (the alpha/beta of the others)"
    out: dict[str, float] = {}
    for item in items:
        name, sep, text = item.rpartition("=")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not sep or not name.strip() or not value > 0 or math.isinf(value):
            return f"--alpha-beta-roi {item!r}: expected NAME=VALUE with VALUE > 0 (Gy)"
        out[name.strip()] = value
    return out


def run_course(  # noqa: PLR0917
    path: Path | None,
    rtstruct: Path | None,
    rtdose: list[Path],
    csv_out: Path | None,
    metrics: list[str],
    rois: list[str],
    end_caps: str,
    alpha_beta: float | None,
    fractions: list[int],
    alpha_beta_roi: list[str],
    dvh_out: Path | None,
    min_coverage: float,
) -> int:
    """Sum the --rtdose files of one course and write its physical and EQD2 rows."""
    from etl.dicom.course_table import course_rows
    from etl.dose.dvh import EndCaps
    from etl.dose.metrics import parse_metric
    from etl.errors import CourseDoseError, MetricSyntaxError

    def usage(message: str) -> int:
        typer.echo(f"rtcohort dvh: {message}", err=True)
        return 2

    if path is not None or rtstruct is None:
        return usage("several --rtdose need --rtstruct FILE (and no PATH)")
    if end_caps not in {e.value for e in EndCaps}:
        return usage(f"--end-caps {end_caps!r}: expected half or none")
    problem = eqd2_usage_error(alpha_beta, fractions, len(rtdose))
    overrides = parse_alpha_beta_roi(alpha_beta_roi, alpha_beta)
    if problem is None and isinstance(overrides, str):
        problem = overrides
    if problem is None and not 0.0 <= min_coverage <= 100.0:
        problem = f"--min-coverage {min_coverage:g}: expected 0 to 100"
    if problem is not None:
        return usage(problem)
    assert isinstance(overrides, dict)
    try:
        parsed = [parse_metric(m) for m in metrics]
    except MetricSyntaxError as exc:
        return usage(f"--metric {exc}")
    try:
        table = course_rows(
            rtdose,
            list(fractions) if fractions else [None] * len(rtdose),
            rtstruct,
            parsed,
            _warn,
            rois=rois,
            end_caps=end_caps,
            alpha_beta_gy=alpha_beta,
            alpha_beta_roi=overrides,
            min_coverage_pct=min_coverage,
        )
    except CourseDoseError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    for name in table.missing_rois:
        _warn("--roi", f"no ROI named {name!r} in the structure set")
    if not table.rows:
        typer.echo("error: rtcohort dvh computed nothing", err=True)
        return 1
    _write_csv(
        csv_out,
        _COLUMNS + list(metrics) + COURSE_COLUMNS,
        _csv_rows(table),
        comment=CSV_HEADER_COMMENT,
    )
    if dvh_out is not None:
        _write_curves(dvh_out, table)
    return 0


def _csv_rows(table: CourseTable) -> list[list[str]]:
    out: list[list[str]] = []
    for c in table.rows:
        r = c.row
        out.append(
            [r.dose_sop_instance_uid, str(r.roi_number), r.roi_name,
             _cell(r.dvh.volume_cc), _cell(r.dvh.outside_grid_cc),
             _cell(r.coverage_pct), r.warning,
             _cell(r.dvh.min_gy if r.covered else None),
             _cell(r.dvh.mean_gy if r.covered else None), _cell(r.dvh.max_gy),
             *(_cell(v) for v in r.metrics), str(c.kind), _cell(c.alpha_beta_gy)]
        )  # fmt: skip
    return out


def _write_curves(target: Path, table: CourseTable) -> None:
    curves: list[list[str]] = []
    for c in table.rows:
        r = c.row
        edges, vols = r.dvh.cumulative()
        curves += [
            [r.dose_sop_instance_uid, str(r.roi_number), r.roi_name, repr(float(d)),
             repr(float(v)), str(c.kind), _cell(c.alpha_beta_gy)]
            for d, v in zip(edges, vols, strict=True)
        ]  # fmt: skip
    header = ["dose_sop_instance_uid", "roi_number", "roi_name", "dose_gy"]
    _write_csv(target, [*header, "volume_cc", *COURSE_COLUMNS], curves)
