"""Dmin, Dmax and D0.03cc of ``etl.dose.dvh`` against a voxel-centre convention.

Many planning systems report the extremes of a structure over the dose-grid voxel
centres that fall inside its contours. The engine reports them over the reconstructed
solid (trilinear dose, exact over its columns, plus the contour vertices; see
``docs/dvh.md``). This script measures the difference on a real plan: for each
structure it takes the voxel centres (x, y of the dose grid) inside each contour
plane, with the dose interpolated linearly between dose planes to the contour plane,
and prints their min and max beside the engine's.

Usage::

    .venv/bin/python benchmarks/dvh_extremes.py [FOLDER]   # default: the
        dicompyler-core example plan extracted by dvh_speed.py (benchmarks/_work)
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent


def voxel_centre_extremes(
    contours: list[np.ndarray], grid: object
) -> tuple[float, float]:
    """Min and max of the dose at voxel centres inside the contours, per plane."""
    from etl.dose._planes import contour_planes
    from etl.dose._raster import fill_planes

    positions, groups = contour_planes(contours, grid)  # type: ignore[arg-type]
    di, dj, dk = grid.spacing_mm  # type: ignore[attr-defined]
    nk, nj, ni = grid.shape  # type: ignore[attr-defined]
    x = np.arange(ni) * di
    y = np.arange(nj) * dj
    dose = grid.dose_gy  # type: ignore[attr-defined]
    lo, hi = np.inf, -np.inf
    for z, polys in zip(positions, groups, strict=True):
        g = z / dk
        if g < -0.5 or g > nk - 0.5:
            continue
        k = int(np.clip(np.floor(g), 0, max(nk - 2, 0)))
        f = float(np.clip(g - k, 0.0, 1.0))
        plane = dose[k] * (1 - f) + dose[min(k + 1, nk - 1)] * f
        mask = fill_planes([polys], x, y)[0]
        if mask.any():
            lo, hi = (
                min(lo, float(plane[mask].min())),
                max(hi, float(plane[mask].max())),
            )
    return lo, hi


def main() -> None:
    from etl.dicom.rtdose import read_rtdose
    from etl.dicom.rtstruct import read_rtstruct
    from etl.dose.dvh import compute_dvh
    from etl.dose.metrics import evaluate

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_work" / "example_data"
    dose_file = next(p for p in folder.iterdir() if "dose" in p.name.lower())
    struct_file = next(
        p
        for p in folder.iterdir()
        if "rtss" in p.name.lower() or "struct" in p.name.lower()
    )
    grid = read_rtdose(dose_file)
    ss = read_rtstruct(struct_file)
    print(f"{folder}: dose grid {grid.spacing_mm} mm")
    print(
        f"{'structure':<16}{'cc':>9}{'min ours':>10}{'voxel':>8}{'max ours':>10}"
        f"{'voxel':>8}{'D0.03cc':>9}"
    )
    for roi in ss.rois:
        if roi.contour_type != "CLOSED_PLANAR" or not roi.contours:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = compute_dvh(roi.contours, grid)
            lo, hi = voxel_centre_extremes(roi.contours, grid)
        d003 = evaluate(d, "D0.03cc[Gy]")
        print(
            f"{roi.name[:15]:<16}{d.volume_cc:>9.2f}{d.min_gy:>10.3f}{lo:>8.3f}"
            f"{d.max_gy:>10.3f}{hi:>8.3f}"
            f"{(d003 if d003 is not None else float('nan')):>9.3f}"
        )


if __name__ == "__main__":
    main()
