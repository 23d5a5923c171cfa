"""Dose-volume histograms computed from contours and a dose grid (pure numpy).

Method
------
1. Contour points (patient mm) are expressed in the frame of the dose grid
   (:meth:`~etl.dose.grid.DoseGrid.to_grid_mm`), which handles every patient orientation
   through the direction cosines. Each contour must lie on a plane parallel to the dose
   slices; contours on the same plane form one cross-section, filled by the even-odd
   rule (holes and islands).
2. The structure spans its contour planes (:mod:`etl.dose._planes`). A gap between
   planes wider than 1.75 times the median spacing splits it into runs. Each end of a
   run is a *tip* (the outer section is degenerate: a polygon of near-zero area, a
   line, a point; the solid narrows to it), *pointed* (the sections shrink and their
   area trend vanishes within one spacing: the solid narrows to a point there) or
   *flat*, by a named convention: ``half`` (half a contour spacing beyond, as in the
   analytical benchmark of Nelms et al. 2015, the section changing at the rate
   between the two outer planes) or ``none`` (the structure ends on its outer plane).
   A run of one plane is a slab of one typical spacing (``half``) or has no volume.
3. Sampling is adaptive in-plane: the raster spacing ``h`` is
   ``cbrt(volume / target_samples)``, but never coarser than the dose grid and never
   finer than ``min_spacing_mm``. A structure sampled at the dose-grid resolution
   uses the voxel centres as its raster. A smaller one gets a finer raster over its
   bounding box, and the dose of each cell is taken at a low-discrepancy point of the
   cell (R2 sequence) rather than at its centre, so that a gradient along the raster
   rows does not turn the DVH into steps of ``h`` times the gradient.
4. Along the slice normal nothing is sampled: each raster cell is a column whose
   extent inside the structure is solved exactly. When a supersampled structure's
   ``h`` is finer than its contour spacing, the section is interpolated between two
   planes (:mod:`etl.dose._interp`): the signed in-plane distances to the two
   sections are blended, offset outwards mid-gap to follow the curvature of the area
   trend, and warped towards tips to follow it there. Otherwise each plane's section
   fills the slab half-way to its neighbours.
5. Dose is trilinear interpolation of the grid: bilinear in-plane, linear along the
   normal between two dose planes. Each column is cut at the dose planes into
   segments over which the dose is uniformly distributed between its end values; a
   segment adds to the histogram exactly (see :mod:`etl.dose._columns`), or, for a
   structure sampled at the dose-grid resolution, as a point mass at its mean dose.
   Mean, min and max are exact over the columns. Columns beyond the voxels of the
   grid are counted in ``outside_grid_cc`` and left out of the histogram, with an
   :class:`~etl.errors.OutsideGridWarning`.
6. Min and max also take the contour vertices on both faces of their slab (where the
   extremes of a near-linear field over a prism lie).

References
----------
Nelms B, Stambaugh C, Hunt D, et al. Methods, software and datasets to verify DVH
calculations against analytical values: twenty years late(r). Med Phys 2015;42:4435-48.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from etl.dose._columns import ColumnHistogram
from etl.dose._interp import add_interpolated
from etl.dose._planes import (
    Run,
    cap_growth_mm,
    contour_planes,
    estimate_volume_mm3,
    median,
    plan_runs,
)
from etl.dose._raster import CHUNK_CELLS, fill_planes
from etl.dose._sampling import (
    axis_weights,
    resample_planes,
    resample_points,
    voxel_planes,
)
from etl.dose.grid import DoseGrid
from etl.dose.histogram import DVH, cumulative_nodes, tail_volumes
from etl.errors import OutsideGridWarning, StructureError

__all__ = ["DVH", "EndCaps", "compute_dvh", "cumulative_nodes", "tail_volumes"]

FloatArray = NDArray[np.float64]

_INTERPOLATE_BELOW = 0.9  # interpolate sections when sampling is finer than this
_MAX_RASTER_CELLS = 30_000_000  # raster cells times dose planes, at most
#: Largest extent of a structure along any axis (mm): nothing in a patient is bigger.
MAX_STRUCTURE_EXTENT_MM = 5000.0


def _check_extent(
    extent_mm: tuple[float, float, float], spacing_mm: tuple[float, float]
) -> None:
    """Refuse contours no patient has: not finite, too large, too many raster cells.

    Raises
    ------
    StructureError
        Naming the extent and the limit.
    """
    if not all(np.isfinite(extent_mm)):
        raise StructureError("contour coordinates are not finite")
    if max(extent_mm) > MAX_STRUCTURE_EXTENT_MM:
        shown = " x ".join(f"{e:.4g}" for e in extent_mm)
        raise StructureError(
            f"contours span {shown} mm, beyond the limit of "
            f"{MAX_STRUCTURE_EXTENT_MM:.0f} mm (corrupt coordinates)"
        )
    cells = (extent_mm[0] / spacing_mm[0] + 3) * (extent_mm[1] / spacing_mm[1] + 3)
    if cells > _MAX_RASTER_CELLS:
        raise StructureError(
            f"contours span {cells:.3g} dose-grid cells per plane, above the limit "
            f"of {_MAX_RASTER_CELLS:,} (dose grid spacing {spacing_mm[0]:.3g} x "
            f"{spacing_mm[1]:.3g} mm)"
        )


class EndCaps(StrEnum):
    """How far a structure extends beyond its outermost contour planes."""

    HALF = "half"
    NONE = "none"


def compute_dvh(
    contours: Sequence[FloatArray],
    dose: DoseGrid,
    *,
    end_caps: EndCaps | str = EndCaps.HALF,
    bin_width_gy: float = 0.01,
    target_samples: int = 400_000,
    min_spacing_mm: float = 0.05,
) -> DVH:
    """Compute the DVH of a structure from its planar contours.

    Parameters
    ----------
    contours
        Closed planar contours, each an (N, 3) array of patient coordinates in mm.
    dose
        The dose grid.
    end_caps
        ``"half"`` (default) or ``"none"``; see the module notes.
    bin_width_gy
        Width of the differential histogram bins.
    target_samples
        Sets the in-plane sample spacing, ``cbrt(volume / target_samples)`` (adaptive
        resolution; see the module notes).
    min_spacing_mm
        Finest sample spacing.

    Returns
    -------
    DVH

    Raises
    ------
    StructureError
        When no contour has at least three points, a coordinate is not finite, or
        the contours span more than :data:`MAX_STRUCTURE_EXTENT_MM` or more raster
        cells per plane than can be held (a corrupt structure, never a patient).
    GeometryError
        When a contour is not parallel to the dose-grid slices.

    Warns
    -----
    ContourWarning
        For each contour of fewer than three points (skipped).
    OutsideGridWarning
        When part of the structure lies outside the dose grid.

    Examples
    --------
    A 20 mm cube in a uniform 2 Gy field:

    >>> import numpy as np
    >>> from etl.dose.grid import DoseGrid
    >>> eye = np.eye(3)
    >>> grid = DoseGrid(np.full((20, 20, 20), 2.0), np.zeros(3), eye[0], eye[1], eye[2],
    ...                 (2.0, 2.0, 2.0))
    >>> sq = np.array([[10, 10], [30, 10], [30, 30], [10, 30]], float)
    >>> cs = [np.column_stack([sq, np.full(4, z)]) for z in np.arange(11.0, 30.0, 2.0)]
    >>> d = compute_dvh(cs, grid)
    >>> round(float(d.volume_cc), 6), d.min_gy, d.max_gy
    (8.0, 2.0, 2.0)
    """
    caps = EndCaps(end_caps)
    if not bin_width_gy > 0:
        raise ValueError(f"bin_width_gy must be positive, got {bin_width_gy}")
    positions, groups = contour_planes(contours, dose)
    runs = plan_runs(
        positions, groups, caps is EndCaps.HALF, fallback_mm=dose.spacing_mm[2]
    )
    r = _raster(groups, positions, runs, dose, target_samples, min_spacing_mm)
    acc = _histogram(dose, r, bin_width_gy)
    slabs: list[tuple[int, float, float]] = []
    for run in runs:
        a, b = run.first, run.last
        if r.interpolate and b > a:
            add_interpolated(acc, groups, positions, run, (r.x, r.y))
            continue
        z0, z1 = run.slab_bounds()
        mids = (positions[a:b] + positions[a + 1 : b + 1]) / 2
        lows = np.concatenate([[z0], mids])
        highs = np.concatenate([mids, [z1]])
        slabs += [(a + n, lows[n], highs[n]) for n in range(b - a + 1)]
    _add_slabs(acc, groups, slabs, r.x, r.y)

    # Contour vertices on their planes, and those of the outer planes at the ends of the
    # end caps: the extremes of a near-linear field over the structure lie there.
    verts = _extreme_candidates(groups, positions, runs)
    vd, vin = dose.interpolate(dose.to_patient_mm(verts))
    extremes = vd[vin]

    volume_cc = float(acc.inside_mm3 + acc.outside_mm3) / 1000.0
    outside_cc = float(acc.outside_mm3) / 1000.0
    if outside_cc > 0:
        warnings.warn(
            f"{outside_cc:.4g} cc of {volume_cc:.4g} cc lies outside the dose grid "
            "and is left out of the DVH",
            OutsideGridWarning,
            stacklevel=2,
        )
    if not acc.inside_mm3 > 0:
        return DVH(
            volume_cc, outside_cc, np.nan, np.nan, np.nan, bin_width_gy, np.zeros(0)
        )
    dmin = min(acc.min_gy, float(extremes.min(initial=np.inf)))
    dmax = max(acc.max_gy, float(extremes.max(initial=-np.inf)))
    mean = float(acc.dose_mm3 / acc.inside_mm3)
    return DVH(
        volume_cc, outside_cc, dmin, mean, dmax, bin_width_gy, acc.differential_cc()
    )


@dataclass(frozen=True)
class _Raster:
    """The in-plane sample raster of a structure and how its sections are added."""

    x: FloatArray
    y: FloatArray
    hx: float
    hy: float
    on_voxels: bool  # sampled at the dose-grid resolution (voxel centres)
    interpolate: bool  # sections interpolated between contour planes
    zlo: float
    zhi: float


def _raster(  # noqa: PLR0917
    groups: list[list[FloatArray]],
    positions: FloatArray,
    runs: list[Run],
    dose: DoseGrid,
    target_samples: int,
    min_spacing_mm: float,
) -> _Raster:
    """Choose the sample spacing and the raster (see the module notes)."""
    di, dj, dk = dose.spacing_mm
    volume_est = max(estimate_volume_mm3(groups, positions, runs), 1e-9)
    h = float(
        np.clip(np.cbrt(volume_est / target_samples), min_spacing_mm, min(di, dj))
    )
    allpts = np.concatenate([np.concatenate(g) for g in groups])
    umin, vmin = allpts.min(axis=0)
    umax, vmax = allpts.max(axis=0)
    zlo = min([positions[0]] + [r.z0 for r in runs])
    zhi = max([positions[-1]] + [r.z1 for r in runs])
    _check_extent((umax - umin, vmax - vmin, zhi - zlo), (di, dj))
    nplanes_k = int(np.ceil((zhi - zlo) / dk)) + 3
    h = max(h, np.sqrt((umax - umin) * (vmax - vmin) * nplanes_k / _MAX_RASTER_CELLS))
    on_voxels = h >= min(di, dj)
    # Between contour planes the section is interpolated (signed distances) when a
    # supersampled structure is sampled finer than its planes; otherwise each plane's
    # section fills the slab half-way to its neighbours.
    spacing = median(np.diff(positions)) if len(positions) > 1 else dk
    interpolate = not on_voxels and min(h, dk) < _INTERPOLATE_BELOW * spacing
    if on_voxels:
        # Sampled at the dose-grid resolution: the raster is the voxel centres.
        hx, hy = di, dj
        x = np.arange(np.floor(umin / di) - 1, np.ceil(umax / di) + 2) * di
        y = np.arange(np.floor(vmin / dj) - 1, np.ceil(vmax / dj) + 2) * dj
    else:
        # Supersampled: one raster over the bounding box of all contours, its cells
        # tiling the box exactly (a box-shaped structure is then counted exactly),
        # plus a margin of one cell.
        ncols = max(1, int(np.ceil((umax - umin) / h - 1e-9)))
        nrows = max(1, int(np.ceil((vmax - vmin) / h - 1e-9)))
        hx = max((umax - umin) / ncols, 1e-6)
        hy = max((vmax - vmin) / nrows, 1e-6)
        # The margin also holds what the end caps add beyond the outer sections.
        m = 1 + int(np.ceil(cap_growth_mm(groups, positions, runs) / min(hx, hy)))
        x = umin + (np.arange(-m, ncols + m) + 0.5) * hx
        y = vmin + (np.arange(-m, nrows + m) + 0.5) * hy
    return _Raster(x, y, hx, hy, on_voxels, interpolate, zlo, zhi)


def _histogram(dose: DoseGrid, r: _Raster, bin_width_gy: float) -> ColumnHistogram:
    """Resample the dose on the raster's planes; return the empty column histogram."""
    di, dj, dk = dose.spacing_mm
    nk, nj, ni = dose.shape
    x, y, hx, hy = r.x, r.y, r.hx, r.hy
    xw = axis_weights(x, di, ni)
    yw = axis_weights(y, dj, nj)
    in_xy = (yw[3][:, None] & xw[3][None, :]).ravel()

    top = max(nk - 2, 0)
    k0 = int(np.clip(np.floor(r.zlo / dk) - 1, 0, top))
    k1 = min(int(np.clip(np.floor(r.zhi / dk), 0, top)) + 1, nk - 1)
    cells_at, dose_range = None, None
    voxels = voxel_planes(dose.dose_gy, k0, k1, yw[:3], xw[:3]) if r.on_voxels else None
    if voxels is not None:  # the grid's own planes, read through an index
        planes, cells_at, dose_range = voxels
    elif r.on_voxels:
        planes = resample_planes(dose.dose_gy, k0, k1, yw[:3], xw[:3])
    else:
        # Dose at a low-discrepancy point of each cell (R2 sequence), not its centre:
        # on a regular raster a gradient along the rows turns the DVH into steps.
        n = np.arange(len(x) * len(y), dtype=np.float64)
        ju = np.mod(0.5 + n * 0.7548776662466927, 1.0) - 0.5
        jv = np.mod(0.5 + n * 0.5698402909980532, 1.0) - 0.5
        u = np.tile(x, len(y)) + ju * hx
        v = np.repeat(y, len(x)) + jv * hy
        planes = resample_points(dose.dose_gy, k0, k1, u, v, spacing=(di, dj))
    return ColumnHistogram(
        planes,
        k0=k0,
        n_frames=nk,
        dk=dk,
        in_plane=in_xy,
        cell_mm2=hx * hy,
        bin_width_gy=bin_width_gy,
        exact=not r.on_voxels,
        cells_at=cells_at,
        dose_range=dose_range,
    )


def _add_slabs(
    acc: ColumnHistogram,
    groups: list[list[FloatArray]],
    slabs: list[tuple[int, float, float]],
    x: FloatArray,
    y: FloatArray,
) -> None:
    """Add each plane's section as a prism over ``[low, high]`` (batches of planes)."""
    per_batch = max(1, CHUNK_CELLS // (len(x) * len(y)))
    for s in range(0, len(slabs), per_batch):
        batch = slabs[s : s + per_batch]
        masks = fill_planes([groups[q] for q, _, _ in batch], x, y)
        for mask, (_, low, high) in zip(masks, batch, strict=True):
            acc.add_prism(np.flatnonzero(mask), low, high)


def _extreme_candidates(
    groups: list[list[FloatArray]], positions: FloatArray, runs: list[Run]
) -> FloatArray:
    """Points (grid mm) where the extremes of a near-linear field may lie.

    The contour vertices on their planes; at a flat end those of the outer plane moved
    to the end of the cap; at a pointed end its tip (the centre of the outer section).
    """
    vertex_sets = list(zip(positions, groups, strict=True))
    for run in runs:
        for end in (run.start, run.end):
            if end.z == end.z_outer:
                continue
            outer = groups[end.outer]
            if end.area is None:
                vertex_sets.append((end.z, outer))
            else:
                vertex_sets.append((end.z, [np.concatenate(outer).mean(axis=0)[None]]))
    return np.concatenate(
        [
            np.column_stack([np.concatenate(p), np.full(sum(map(len, p)), w)])
            for w, p in vertex_sets
        ]
    )
