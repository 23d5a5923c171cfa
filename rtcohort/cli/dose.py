"""`rtcohort` commands owned by the `dose` area."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Register this area's commands on the root app."""

    @app.command("dvh")
    def dvh(  # noqa: PLR0917
        path: Path | None = typer.Argument(
            None, help="Folder: each RTDOSE is paired with its RTSTRUCT."
        ),
        rtstruct: Path | None = typer.Option(None, "--rtstruct", help="RTSTRUCT file."),
        rtdose: Path | None = typer.Option(None, "--rtdose", help="RTDOSE file."),
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
        fractions: int | None = typer.Option(
            None, "--fractions", help="Number of fractions (with --alpha-beta)."
        ),
        dvh_out: Path | None = typer.Option(
            None, "--dvh-out", help="Write cumulative DVHs (long format) here."
        ),
    ) -> None:
        """Compute DVHs and dose metrics from RTDOSE and RTSTRUCT.

        One CSV row per dose object and CLOSED_PLANAR ROI. Problems of one file or ROI
        are warnings on stderr; the exit code is 0 whenever rows were written. Example:

            rtcohort dvh plan_folder/ --metric "D95%[Gy]" --metric "V20Gy[%]"
        """
        code = _run_dvh(
            path, rtstruct, rtdose, csv_out, metric, roi, end_caps, alpha_beta,
            fractions, dvh_out,
        )  # fmt: skip
        if code:
            raise typer.Exit(code)

    @app.command("phantom")
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
        import json
        from pathlib import Path

        from etl.phantom import write_phantom
        from etl.phantom_geometry import PhantomSpecError
        from etl.phantom_spec import parse_spec, spec_from_options

        def bad(message: str) -> typer.Exit:
            typer.echo(f"rtcohort phantom: {message}", err=True)
            return typer.Exit(2)

        if (spec is None) == (shape is None):
            raise bad("give either --spec FILE.json or --shape (not both)")
        for label, value in (
            ("--contour-spacing-mm", contour_spacing_mm),
            ("--dose-grid-mm", dose_grid_mm),
        ):
            if value is not None and not value > 0:
                raise bad(f"{label} {value}: must be > 0")
        try:
            if spec is not None:
                try:
                    data = json.loads(Path(spec).read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError) as exc:
                    raise bad(f"{spec}: cannot read the JSON spec ({exc})") from None
                if contour_spacing_mm is not None:
                    data["contour_spacing_mm"] = contour_spacing_mm
                if dose_grid_mm is not None:
                    data["dose_grid_mm"] = dose_grid_mm
                model = parse_spec(data)
            else:
                if size_mm is None:
                    raise bad("--size-mm is required with --shape")
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
            raise bad(f"{spec or 'options'}: {exc}") from None
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

    # phantom command: registered above by the phantom area (etl.phantom).


# --- rtcohort dvh -------------------------------------------------------------------

_NOT_DICOM_SUFFIXES = {".json", ".csv", ".txt", ".md", ".py", ".xml", ".html", ".log"}
_COLUMNS = [
    "dose_sop_instance_uid",
    "roi_number",
    "roi_name",
    "volume_cc",
    "outside_grid_cc",
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


def _pair_folder(folder: Path) -> list[tuple[Path, Path]]:
    """Pair each RTDOSE in ``folder`` with an RTSTRUCT (via its plan, else frame)."""
    from etl.dicom_io import read_dataset
    from etl.errors import DicomParseError

    doses: list[tuple[Path, Any]] = []
    plans: dict[str, Any] = {}
    structs: dict[str, tuple[Path, str]] = {}
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
    )
    for file in files:
        try:
            ds = read_dataset(file, stop_before_pixels=True)
        except DicomParseError as exc:
            if file.suffix.lower() not in _NOT_DICOM_SUFFIXES:
                _warn(file, f"skipped ({exc})")
            continue
        modality = str(ds.get("Modality", ""))
        if modality == "RTDOSE":
            doses.append((file, ds))
        elif modality in ("RTPLAN", "RTIONPLAN"):
            plans[str(ds.get("SOPInstanceUID", ""))] = ds
        elif modality == "RTSTRUCT":
            frames = [
                str(r.FrameOfReferenceUID)
                for r in ds.get("ReferencedFrameOfReferenceSequence", [])
                if r.get("FrameOfReferenceUID")
            ]
            structs[str(ds.get("SOPInstanceUID", ""))] = (
                file,
                frames[0] if frames else "",
            )
    pairs: list[tuple[Path, Path]] = []
    for file, ds in doses:
        chosen: Path | None = None
        for ref in ds.get("ReferencedRTPlanSequence", []):
            plan = plans.get(str(ref.get("ReferencedSOPInstanceUID", "")))
            for sref in plan.get("ReferencedStructureSetSequence", []) if plan else []:
                hit = structs.get(str(sref.get("ReferencedSOPInstanceUID", "")))
                if hit:
                    chosen = hit[0]
        if chosen is None:
            frame = str(ds.get("FrameOfReferenceUID", ""))
            same = [f for f, fr in structs.values() if fr and fr == frame]
            if len(same) == 1:
                chosen = same[0]
            elif len(same) > 1:
                _warn(
                    file,
                    f"{len(same)} structure sets share its frame of reference, "
                    "none referenced through a plan; skipped",
                )
                continue
        if chosen is None:
            _warn(
                file,
                "no RTSTRUCT in the folder is referenced or shares its frame of "
                "reference; skipped",
            )
            continue
        pairs.append((file, chosen))
    return pairs


def _run_dvh(  # noqa: PLR0917
    path: Path | None,
    rtstruct: Path | None,
    rtdose: Path | None,
    csv_out: Path | None,
    metrics: list[str],
    rois: list[str],
    end_caps: str,
    alpha_beta: float | None,
    fractions: int | None,
    dvh_out: Path | None,
) -> int:
    import csv
    import sys
    import warnings

    from etl.dvh import EndCaps, compute_dvh
    from etl.errors import EtlError, MetricSyntaxError
    from etl.metrics import evaluate, parse_metric
    from etl.radiobiology import dvh_to_eqd2
    from etl.rtdose import read_rtdose
    from etl.rtstruct import read_rtstruct

    def usage(message: str) -> int:
        typer.echo(f"rtcohort dvh: {message}", err=True)
        return 2

    if (path is None) == (rtstruct is None and rtdose is None):
        return usage("give either PATH or --rtstruct FILE --rtdose FILE")
    if path is None and (rtstruct is None or rtdose is None):
        return usage("--rtstruct and --rtdose go together")
    if end_caps not in {e.value for e in EndCaps}:
        return usage(f"--end-caps {end_caps!r}: expected half or none")
    if (alpha_beta is None) != (fractions is None):
        return usage("--alpha-beta and --fractions go together")
    if (
        alpha_beta is not None
        and fractions is not None
        and (alpha_beta <= 0 or fractions < 1)
    ):
        return usage("--alpha-beta must be > 0 and --fractions >= 1")
    try:
        parsed = [parse_metric(m) for m in metrics]
    except MetricSyntaxError as exc:
        return usage(f"--metric {exc}")

    if path is not None:
        if not path.is_dir():
            return usage(f"{path}: not a folder")
        pairs = _pair_folder(path)
    else:
        assert rtstruct is not None
        assert rtdose is not None
        pairs = [(rtdose, rtstruct)]

    rows: list[list[str]] = []
    curves: list[list[str]] = []
    wanted = {r.casefold() for r in rois}
    found: set[str] = set()
    structures: dict[Path, Any] = {}
    for dose_path, struct_path in pairs:
        try:
            grid = read_rtdose(dose_path)
        except EtlError as exc:
            _warn(dose_path, f"dose not usable: {exc}")
            continue
        try:
            if struct_path not in structures:
                structures[struct_path] = read_rtstruct(struct_path)
            ss = structures[struct_path]
        except EtlError as exc:
            _warn(struct_path, f"structure set not usable: {exc}")
            continue
        if ss.frame_of_reference_uid != grid.frame_of_reference_uid:
            message = (
                f"frame of reference {ss.frame_of_reference_uid or '(none)'} differs "
                "from "
                f"that of dose {dose_path} ({grid.frame_of_reference_uid or '(none)'})"
            )
            if path is None:
                typer.echo(f"error: {struct_path}: {message}", err=True)
                return 1
            _warn(struct_path, message + "; skipped")
            continue
        for r in ss.rois:
            if wanted and r.name.casefold() not in wanted:
                continue
            found.add(r.name.casefold())
            label = f"{struct_path}: ROI {r.number} '{r.name}'"
            if not r.contours:
                _warn(label, "has no contours; no row")
                continue
            if r.contour_type != "CLOSED_PLANAR":
                _warn(
                    label, f"contour type {r.contour_type}, not CLOSED_PLANAR; no row"
                )
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    result = compute_dvh(r.contours, grid, end_caps=end_caps)
                except EtlError as exc:
                    for w in caught:
                        _warn(label, str(w.message))
                    _warn(label, f"{exc}; no row")
                    continue
            for w in caught:
                _warn(label, str(w.message))
            if alpha_beta is not None and fractions is not None:
                result = dvh_to_eqd2(result, fractions, alpha_beta)
            row = [
                grid.sop_instance_uid,
                str(r.number),
                r.name,
                _cell(result.volume_cc),
                _cell(result.outside_grid_cc),
                _cell(result.min_gy),
                _cell(result.mean_gy),
                _cell(result.max_gy),
            ]
            row += [_cell(evaluate(result, m)) for m in parsed]
            rows.append(row)
            if dvh_out is not None:
                edges, vols = result.cumulative()
                curves += [
                    [grid.sop_instance_uid, str(r.number), r.name, repr(float(d)),
                     repr(float(v))]
                    for d, v in zip(edges, vols, strict=True)
                ]  # fmt: skip
    for name in sorted(wanted - found):
        _warn("--roi", f"no ROI named {name!r} in any structure set")
    if not rows:
        typer.echo("error: rtcohort dvh computed nothing", err=True)
        return 1

    header = _COLUMNS + list(metrics)
    if csv_out is None:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    else:
        with csv_out.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(header)
            out.writerows(rows)
    if dvh_out is not None:
        with dvh_out.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(
                [
                    "dose_sop_instance_uid",
                    "roi_number",
                    "roi_name",
                    "dose_gy",
                    "volume_cc",
                ]
            )
            out.writerows(curves)
    return 0
