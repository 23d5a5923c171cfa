"""`rtcohort` commands owned by the `dose` area."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from etl.phantom.spec import PhantomSpec

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Register this area's commands on the root app."""
    app.command("dvh")(dvh)
    app.command("phantom")(phantom)


def dvh(  # noqa: PLR0917
    path: Path | None = typer.Argument(
        None, help="Folder: each RTDOSE is paired with its RTSTRUCT."
    ),
    rtstruct: Path | None = typer.Option(None, "--rtstruct", help="RTSTRUCT file."),
    rtdose: list[Path] = typer.Option(
        [], "--rtdose", help="RTDOSE file; repeat to sum the plans of a course."
    ),
    csv_out: Path | None = typer.Option(
        None, "--csv", help="Write the table here (default: stdout)."
    ),
    metric: list[str] = typer.Option(
        [], "--metric", help="TG-263 metric, e.g. D95%[Gy]; repeat for more."
    ),
    roi: list[str] = typer.Option(
        [], "--roi", help="Only this ROI name (case-insensitive); repeat."
    ),
    end_caps: str = typer.Option("half", "--end-caps", help="half|none"),
    alpha_beta: float | None = typer.Option(
        None,
        "--alpha-beta",
        help="alpha/beta in Gy: report EQD2 (with --fractions).",
    ),
    fractions: list[int] = typer.Option(
        [],
        "--fractions",
        help="Number of fractions (with --alpha-beta); the i-th pairs with the i-th "
        "--rtdose.",
    ),
    alpha_beta_roi: list[str] = typer.Option(
        [],
        "--alpha-beta-roi",
        help="NAME=VALUE: alpha/beta in Gy of one ROI (case-insensitive), "
        "overriding --alpha-beta; repeat.",
    ),
    dvh_out: Path | None = typer.Option(
        None, "--dvh-out", help="Write cumulative DVHs (long format) here."
    ),
    min_coverage: float = typer.Option(
        99.0,
        "--min-coverage",
        help="Percent of a structure the dose grid must cover for mean, min, "
        "Dx and Vx (else empty, reason in 'warning'; max is then a lower bound).",
    ),
) -> None:
    """Compute DVHs and dose metrics from RTDOSE and RTSTRUCT.

    One CSV row per dose object and CLOSED_PLANAR ROI. Problems of one file or ROI
    are warnings on stderr; the exit code is 0 whenever rows were written. With
    several --rtdose (one course, one frame of reference) the plans are summed,
    physically and in EQD2 with each plan's fractions, and each ROI gets a
    physical row and an EQD2 row (columns dose_kind and alpha_beta_gy added).
    min_gy/max_gy are the exact extremes of the trilinear dose over the
    reconstructed solid (plus its contour vertices), not of voxel centres; a
    TPS's voxel-centre values can lie inside them. Example:

        rtcohort dvh plan_folder/ --metric "D95%[Gy]" --metric "V20Gy[%]"

        rtcohort dvh --rtstruct RS.dcm --rtdose A.dcm --rtdose B.dcm
        --fractions 25 --fractions 8 --alpha-beta 3 --alpha-beta-roi PTV=10
    """
    if len(rtdose) > 1:
        from rtcohort.cli.dose_course import run_course

        code = run_course(
            path, rtstruct, rtdose, csv_out, metric, roi, end_caps, alpha_beta,
            fractions, alpha_beta_roi, dvh_out, min_coverage,
        )  # fmt: skip
    else:
        code = _run_dvh(
            path, rtstruct, rtdose[0] if rtdose else None, csv_out, metric, roi,
            end_caps, alpha_beta, fractions, dvh_out, min_coverage, alpha_beta_roi,
        )  # fmt: skip
    if code:
        raise typer.Exit(code)


def phantom(  # noqa: PLR0917
    out: str = typer.Argument(..., help="Folder to write the DICOM files into."),
    spec: str | None = typer.Option(
        None, "--spec", help="JSON spec of named ROIs and dose fields."
    ),
    shape: str | None = typer.Option(None, "--shape", help="sphere|cylinder|cone"),
    size_mm: float | None = typer.Option(
        None, "--size-mm", help="Diameter (and height of cylinders and cones)."
    ),
    offset_mm: str = typer.Option("0,0,0", "--offset-mm", help="Centre X,Y,Z."),
    axis: str = typer.Option("z", "--axis", help="Axis: x|y|z or X,Y,Z."),
    contour_spacing_mm: float | None = typer.Option(
        None, "--contour-spacing-mm", help="Distance between planes [default 1]."
    ),
    dose_grid_mm: float | None = typer.Option(
        None, "--dose-grid-mm", help="Dose voxel size [default 2]."
    ),
    dose_gy: float = typer.Option(16.0, "--dose-gy", help="Dose at the centre."),
    gradient: str = typer.Option(
        "none", "--gradient", help="none|x|y|z or a direction X,Y,Z."
    ),
    gradient_gy_per_mm: float = typer.Option(1.0, "--gradient-gy-per-mm"),
    patient_id: str = typer.Option("PHANTOM", "--patient-id"),
    seed: int | None = typer.Option(None, "--seed", help="Reproducible UIDs."),
) -> None:
    """Write an analytic phantom (CT, RTSTRUCT, RTPLAN, RTDOSE) and truth.json.

    The truth is the analytical DVH of the true solid (Nelms et al. 2015). Example:

        rtcohort phantom out/ --shape sphere --size-mm 24 --contour-spacing-mm 1
        --dose-grid-mm 2 --dose-gy 16 --gradient z --gradient-gy-per-mm 1
    """
    from etl.phantom.geometry import PhantomSpecError
    from etl.phantom.spec import spec_from_options
    from etl.phantom.write import write_phantom

    if (spec is None) == (shape is None):
        raise _phantom_error("give either --spec FILE.json or --shape (not both)")
    for label, value in (
        ("--contour-spacing-mm", contour_spacing_mm),
        ("--dose-grid-mm", dose_grid_mm),
    ):
        if value is not None and not value > 0:
            raise _phantom_error(f"{label} {value}: must be > 0")
    try:
        if spec is not None:
            model = _phantom_from_file(spec, contour_spacing_mm, dose_grid_mm)
        else:
            if size_mm is None:
                raise _phantom_error("--size-mm is required with --shape")
            model = spec_from_options(
                str(shape),
                float(size_mm),
                offset_mm=offset_mm,
                axis=axis,
                contour_spacing_mm=1.0
                if contour_spacing_mm is None
                else contour_spacing_mm,
                dose_grid_mm=2.0 if dose_grid_mm is None else dose_grid_mm,
                dose_gy=dose_gy,
                gradient=gradient,
                gradient_gy_per_mm=gradient_gy_per_mm,
            )
        truth = write_phantom(out, model, patient_id=patient_id, seed=seed)
    except PhantomSpecError as exc:
        raise _phantom_error(f"{spec or 'options'}: {exc}") from None
    typer.echo(
        f"wrote {len(truth['files']['ct'])} CT slices, RTSTRUCT.dcm, RTPLAN.dcm, "
        f"RTDOSE.dcm and truth.json to {out}"
    )
    typer.echo("roi\tvolume_cc\tmin_gy\tmean_gy\tmax_gy\tD95%[Gy]")
    for roi in truth["rois"]:
        typer.echo(
            f"{roi['name']}\t{roi['volume_cc']:.4f}\t{roi['min_gy']:.3f}\t"
            f"{roi['mean_gy']:.3f}\t{roi['max_gy']:.3f}\t"
            f"{roi['metrics']['D95%[Gy]']:.3f}"
        )


def _phantom_error(message: str) -> typer.Exit:
    typer.echo(f"rtcohort phantom: {message}", err=True)
    return typer.Exit(2)


def _phantom_from_file(
    spec: str, contour_spacing_mm: float | None, dose_grid_mm: float | None
) -> PhantomSpec:
    """Read a JSON phantom spec; the spacing options override the file's."""
    import json

    from etl.phantom.spec import parse_spec

    try:
        data = json.loads(Path(spec).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise _phantom_error(f"{spec}: cannot read the JSON spec ({exc})") from None
    if contour_spacing_mm is not None:
        data["contour_spacing_mm"] = contour_spacing_mm
    if dose_grid_mm is not None:
        data["dose_grid_mm"] = dose_grid_mm
    return parse_spec(data)


# --- rtcohort dvh -------------------------------------------------------------------

_COLUMNS = [
    "dose_sop_instance_uid",
    "roi_number",
    "roi_name",
    "volume_cc",
    "outside_grid_cc",
    "dose_coverage_pct",
    "warning",
    "min_gy",
    "mean_gy",
    "max_gy",
]


def _warn(where: object, message: str) -> None:
    typer.echo(f"warning: {where}: {message}", err=True)


def _cell(value: float | None) -> str:
    import math

    if value is None or math.isnan(value):
        return ""
    return repr(float(value))


def _usage_error(  # noqa: PLR0917
    path: Path | None,
    rtstruct: Path | None,
    rtdose: Path | None,
    end_caps: str,
    alpha_beta: float | None,
    fractions: list[int],
    min_coverage: float = 99.0,
) -> str | None:
    from etl.dose.dvh import EndCaps
    from rtcohort.cli.dose_course import eqd2_usage_error

    if (path is None) == (rtstruct is None and rtdose is None):
        return "give either PATH or --rtstruct FILE --rtdose FILE"
    if path is None and (rtstruct is None or rtdose is None):
        return "--rtstruct and --rtdose go together"
    if end_caps not in {e.value for e in EndCaps}:
        return f"--end-caps {end_caps!r}: expected half or none"
    if not 0.0 <= min_coverage <= 100.0:
        return f"--min-coverage {min_coverage:g}: expected 0 to 100"
    return eqd2_usage_error(alpha_beta, fractions, 1)


#: Comment lines written above the header of the metrics CSV (``--no-header-comment``
#: leaves them out): what the extremes and D0.03cc are sampled on (docs/dvh.md).
CSV_HEADER_COMMENT: tuple[str, ...] = (
    "# rtcohort dvh: one row per dose object and CLOSED_PLANAR ROI; Gy, cc, percent.",
    "# min_gy/max_gy: extremes of the trilinear dose over one sample point per raster"
    " cell (voxel centres at dose-grid resolution, low-discrepancy points when"
    " supersampled) along each column's whole extent, and the contour vertices"
    " (end caps and pointed tips included): points of the reconstructed solid, not"
    " dose-grid voxel centres, and not the supremum between sample points.",
    "# D0.03cc and every Dx: read on the cumulative DVH by linear interpolation between"
    " bin edges (first and last node = min_gy and max_gy); a planning system's"
    " voxel-centre min/max can differ for small structures in steep gradients"
    " (docs/dvh.md, measured on a real plan). Lines starting with # are comments.",
)


def _write_csv(
    target: Path | None,
    header: list[str],
    rows: list[list[str]],
    comment: tuple[str, ...] = (),
) -> None:
    import csv
    import sys

    if target is None:
        sys.stdout.writelines(line + "\n" for line in comment)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return
    with target.open("w", newline="", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in comment)
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(header)
        out.writerows(rows)


def _run_dvh(  # noqa: PLR0917
    path: Path | None,
    rtstruct: Path | None,
    rtdose: Path | None,
    csv_out: Path | None,
    metrics: list[str],
    rois: list[str],
    end_caps: str,
    alpha_beta: float | None,
    fractions: list[int],
    dvh_out: Path | None,
    min_coverage: float = 99.0,
    alpha_beta_roi: list[str] | None = None,
) -> int:
    from etl.dicom.dvh_table import dvh_rows, pair_folder
    from etl.dose.metrics import parse_metric
    from etl.errors import MetricSyntaxError, PairingError
    from rtcohort.cli.dose_course import parse_alpha_beta_roi

    def usage(message: str) -> int:
        typer.echo(f"rtcohort dvh: {message}", err=True)
        return 2

    problem = _usage_error(
        path, rtstruct, rtdose, end_caps, alpha_beta, fractions, min_coverage
    )
    if problem is not None:
        return usage(problem)
    overrides = parse_alpha_beta_roi(alpha_beta_roi or [], alpha_beta)
    if isinstance(overrides, str):
        return usage(overrides)
    try:
        parsed = [parse_metric(m) for m in metrics]
    except MetricSyntaxError as exc:
        return usage(f"--metric {exc}")
    if path is not None and not path.is_dir():
        return usage(f"{path}: not a folder")
    if path is not None:
        pairs = pair_folder(path, _warn)
    else:
        assert rtstruct is not None
        assert rtdose is not None
        pairs = [(rtdose, rtstruct)]
    eqd2 = (fractions[0], alpha_beta) if alpha_beta is not None else None
    try:
        table = dvh_rows(
            pairs,
            parsed,
            _warn,
            rois=rois,
            end_caps=end_caps,
            eqd2=eqd2,
            strict_frames=path is None,
            min_coverage_pct=min_coverage,
            alpha_beta_roi=overrides,
        )
    except PairingError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    for name in table.missing_rois:
        _warn("--roi", f"no ROI named {name!r} in any structure set")
    if not table.rows:
        typer.echo("error: rtcohort dvh computed nothing", err=True)
        return 1
    _write_csv(  # the metrics table, with its header comment
        csv_out,
        _COLUMNS + list(metrics),
        [
            [r.dose_sop_instance_uid, str(r.roi_number), r.roi_name,
             _cell(r.dvh.volume_cc), _cell(r.dvh.outside_grid_cc),
             _cell(r.coverage_pct), r.warning,
             _cell(r.dvh.min_gy if r.covered else None),
             _cell(r.dvh.mean_gy if r.covered else None), _cell(r.dvh.max_gy),
             *(_cell(v) for v in r.metrics)]
            for r in table.rows
        ],
        comment=CSV_HEADER_COMMENT,
    )  # fmt: skip
    if dvh_out is not None:
        curves: list[list[str]] = []
        for r in table.rows:
            edges, vols = r.dvh.cumulative()
            curves += [
                [r.dose_sop_instance_uid, str(r.roi_number), r.roi_name,
                 repr(float(d)), repr(float(v))]
                for d, v in zip(edges, vols, strict=True)
            ]  # fmt: skip
        header = ["dose_sop_instance_uid", "roi_number", "roi_name"]
        _write_csv(dvh_out, [*header, "dose_gy", "volume_cc"], curves)
    return 0
