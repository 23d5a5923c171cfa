"""Dose-volume histograms computed from contours and a dose grid (pure numpy).

Method
------
1. Contour points (patient mm) are expressed in the frame of the dose grid
   (:meth:`~etl.dose.grid.DoseGrid.to_grid_mm`), which handles every patient orientation
   through the direction cosines. Each contour must lie on a plane parallel to the dose
   slices; contours on the same plane form one cross-section, filled by the even-odd
   rule (holes and islands).
2. The structure spans its contour planes; the outermost planes of each run of planes
   get end caps by a named convention: ``half`` (the structure reaches half a contour
   spacing beyond, as assumed by the analytical benchmark of Nelms et al. 2015; the
   section is continued there at the rate it changes between the two outer planes, so a
   cylinder keeps its section and a sphere narrows) or ``none`` (the structure ends on
   its outer planes). A gap between planes wider than 1.75 times the median spacing
   splits the structure into runs, each capped. A run of one plane is a slab of one
   typical spacing (``half``) or has no volume (``none``).
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
   planes: the signed in-plane distance to each section (Euclidean distance
   transform) is interpolated linearly, so a column is one interval per gap, ending
   where the interpolated distance is zero. Otherwise each plane's section fills the
   slab half-way to its neighbours.
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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from etl.dose._columns import (
    ColumnHistogram,
    axis_weights,
    resample_planes,
    resample_points,
)
from etl.dose._raster import CHUNK_CELLS, fill_planes, next_vertex, signed_distances
from etl.dose.grid import DoseGrid
from etl.errors import ContourWarning, GeometryError, OutsideGridWarning, StructureError

__all__ = ["DVH", "EndCaps", "compute_dvh", "cumulative_nodes", "tail_volumes"]

FloatArray = NDArray[np.float64]

_PLANE_TOLERANCE_MM = 0.05  # largest out-of-plane spread of one contour
_PLANE_MERGE_MM = 0.01  # contours whose planes differ by less share a plane
_GAP_FACTOR = 1.75  # spacing above this times the median splits runs of planes
_INTERPOLATE_BELOW = 0.9  # interpolate sections when sampling is finer than this
_MAX_RASTER_CELLS = 30_000_000  # raster cells times dose planes, at most
_MIN_POINTS = 3


class EndCaps(StrEnum):
    """How far a structure extends beyond its outermost contour planes."""

    HALF = "half"
    NONE = "none"


@dataclass(frozen=True)
class DVH:
    """A dose-volume histogram with exact summary statistics.

    Attributes
    ----------
    volume_cc : float
        Total volume of the structure (inside and outside the dose grid), cm3.
    outside_grid_cc : float
        Part of ``volume_cc`` outside the dose grid, not in the histogram.
    min_gy, mean_gy, max_gy : float
        Over the part inside the grid; NaN when nothing is inside.
    bin_width_gy : float
        Width of the histogram bins.
    differential_cc : ndarray
        Volume (cm3) per bin; bin ``b`` covers ``[b * w, (b + 1) * w)`` Gy.
    """

    volume_cc: float
    outside_grid_cc: float
    min_gy: float
    mean_gy: float
    max_gy: float
    bin_width_gy: float
    differential_cc: FloatArray

    @property
    def inside_grid_cc(self) -> float:
        """Volume covered by the histogram (inside the dose grid), cm3."""
        return float(np.sum(self.differential_cc))

    def cumulative(self) -> tuple[FloatArray, FloatArray]:
        """Return the cumulative DVH at the bin edges.

        Returns
        -------
        dose_gy : ndarray, shape (n_bins + 1,)
            Bin edges ``0, w, 2w, ...``.
        volume_cc : ndarray, shape (n_bins + 1,)
            Volume receiving at least each dose.
        """
        n = len(self.differential_cc)
        edges = np.arange(n + 1, dtype=np.float64) * self.bin_width_gy
        tail = np.concatenate([tail_volumes(self.differential_cc), [0.0]])
        return edges, tail


def tail_volumes(differential: NDArray[np.floating[Any]]) -> FloatArray:
    """Volume at or above each bin of a differential DVH (along the last axis).

    The one place a differential histogram becomes a cumulative one.

    Parameters
    ----------
    differential
        Volumes per bin in increasing dose order, shape ``(..., bins)``.

    Returns
    -------
    ndarray
        Same shape; entry ``b`` is the volume of bins ``b, b + 1, ...``.

    Examples
    --------
    >>> tail_volumes(np.array([1.0, 2.0, 3.0])).tolist()
    [6.0, 5.0, 3.0]
    """
    diff = np.asarray(differential, dtype=np.float64)
    return np.asarray(np.cumsum(diff[..., ::-1], axis=-1)[..., ::-1])


def cumulative_nodes(
    dvh: DVH | NDArray[np.floating[Any]],
    volume: NDArray[np.floating[Any]] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Nodes of a cumulative DVH: doses and the volume receiving at least each.

    Two representations of a differential DVH have one cumulative curve, read by
    linear interpolation between the nodes (:mod:`etl.dose.metrics`):

    * a :class:`DVH` (dose uniform within each bin): the exact minimum, the bin
      edges strictly between, the exact maximum; the full in-grid volume at the
      minimum, 0 at the maximum;
    * point masses ``(dose_gy, volume)`` (the bin-centre DVHs of :mod:`ntcp`):
      a step function, two nodes at each occupied dose (the volume at or above it,
      then above it), so that interpolation is constant between the doses. Bins
      without volume are left out.

    Parameters
    ----------
    dvh
        A :class:`DVH`, or the doses (Gy) of point masses, shape ``(bins,)``.
    volume
        The volumes of the point masses (any unit); only with an array of doses.

    Returns
    -------
    dose_gy, volume : ndarray
        Non-decreasing doses and non-increasing volumes.

    Examples
    --------
    >>> d, v = cumulative_nodes(np.array([10.0, 30.0]), np.array([0.75, 0.25]))
    >>> d.tolist(), v.tolist()
    ([10.0, 10.0, 30.0, 30.0], [1.0, 0.25, 0.25, 0.0])
    """
    if isinstance(dvh, DVH):
        edges, vol = dvh.cumulative()
        total = float(vol[0]) if len(vol) else 0.0
        inner = (edges > dvh.min_gy) & (edges < dvh.max_gy)
        dose = np.concatenate([[dvh.min_gy], edges[inner], [dvh.max_gy]])
        return dose, np.concatenate([[total], vol[inner], [0.0]])
    if volume is None:
        raise ValueError("volume is required with an array of doses")
    d = np.asarray(dvh, dtype=np.float64).ravel()
    v = np.asarray(volume, dtype=np.float64).ravel()
    if d.shape != v.shape:
        raise ValueError(f"dose and volume differ in shape: {d.shape}, {v.shape}")
    keep = v > 0
    order = np.argsort(d[keep], kind="stable")
    d, v = d[keep][order], v[keep][order]
    at_or_above = tail_volumes(v)
    above = np.concatenate([at_or_above[1:], [0.0]])
    return np.repeat(d, 2), np.column_stack([at_or_above, above]).ravel()


def _planes(
    contours: Sequence[FloatArray], dose: DoseGrid
) -> tuple[FloatArray, list[list[FloatArray]]]:
    """Group contours (in grid mm) by plane; return plane positions and 2-D polygons."""
    arrays: list[FloatArray] = []
    for n, pts in enumerate(contours):
        arr = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        if len(arr) < _MIN_POINTS:
            warnings.warn(
                f"contour {n} has {len(arr)} point(s), fewer than three; skipped",
                ContourWarning,
                stacklevel=3,
            )
            continue
        arrays.append(arr)
    flat: list[tuple[float, FloatArray]] = []
    if arrays:
        # All contours in the grid frame at once; then per contour its plane.
        g = dose.to_grid_mm(np.concatenate(arrays))
        starts = np.cumsum([0] + [len(a) for a in arrays[:-1]])
        spread = np.maximum.reduceat(g[:, 2], starts) - np.minimum.reduceat(
            g[:, 2], starts
        )
        bad = np.flatnonzero(spread > _PLANE_TOLERANCE_MM)
        if bad.size:
            n = int(bad[0])
            raise GeometryError(
                f"contour {n} is not on a plane parallel to the dose-grid slices "
                f"(spread {float(spread[n]):.3f} mm across the slice normal)"
            )
        means = np.add.reduceat(g[:, 2], starts) / [len(a) for a in arrays]
        flat = [
            (float(w), poly)
            for w, poly in zip(means, np.split(g[:, :2], starts[1:]), strict=True)
        ]
    if not flat:
        raise StructureError("no contour with at least three points")
    flat.sort(key=lambda t: t[0])
    positions: list[float] = []
    groups: list[list[FloatArray]] = []
    for w, poly in flat:
        if positions and w - positions[-1] <= _PLANE_MERGE_MM:
            groups[-1].append(poly)
        else:
            positions.append(w)
            groups.append([poly])
    return np.asarray(positions), groups


def _runs(
    positions: FloatArray, end_caps: EndCaps, fallback_mm: float
) -> list[tuple[int, int, float, float]]:
    """Split planes at gaps; return (first, last, z_start, z_end) per run (grid mm)."""
    diffs = np.diff(positions)
    typical = float(np.median(diffs)) if len(diffs) else fallback_mm
    breaks = np.nonzero(diffs > _GAP_FACTOR * typical)[0]
    firsts = np.concatenate([[0], breaks + 1]).astype(int)
    lasts = np.concatenate([breaks, [len(positions) - 1]]).astype(int)
    runs = []
    for a, b in zip(firsts, lasts, strict=True):
        if end_caps is EndCaps.HALF:
            before = positions[a + 1] - positions[a] if b > a else typical
            after = positions[b] - positions[b - 1] if b > a else typical
            runs.append(
                (int(a), int(b), positions[a] - before / 2, positions[b] + after / 2)
            )
        elif b > a:
            runs.append((int(a), int(b), float(positions[a]), float(positions[b])))
    return runs


def _cap_growth_mm(
    groups: list[list[FloatArray]],
    positions: FloatArray,
    runs: list[tuple[int, int, float, float]],
) -> float:
    """How far end caps may reach beyond the outer sections (bounding-box estimate)."""
    growth = 0.0
    for a, b, z0, z1 in runs:
        if b == a:
            continue
        for outer, inner, z_cap in ((a, a + 1, z0), (b, b - 1, z1)):
            t = abs(z_cap - positions[outer]) / abs(positions[inner] - positions[outer])
            po, pi = np.concatenate(groups[outer]), np.concatenate(groups[inner])
            beyond = np.concatenate(
                [pi.min(axis=0) - po.min(axis=0), po.max(axis=0) - pi.max(axis=0)]
            )
            growth = max(growth, t * float(beyond.max()))
    return growth


def _estimate_volume_mm3(
    groups: list[list[FloatArray]],
    positions: FloatArray,
    runs: list[tuple[int, int, float, float]],
) -> float:
    polys = [p for ps in groups for p in ps]
    pts = np.concatenate(polys)
    nxt = pts[next_vertex([len(p) for p in polys])]
    cross = pts[:, 0] * nxt[:, 1] - pts[:, 1] * nxt[:, 0]
    starts = np.cumsum([0] + [len(p) for p in polys[:-1]])
    poly_areas = np.abs(np.add.reduceat(cross, starts)) / 2
    owner = np.repeat(np.arange(len(groups)), [len(ps) for ps in groups])
    areas = np.bincount(owner, weights=poly_areas, minlength=len(groups))
    total = 0.0
    for a, b, z0, z1 in runs:
        z = np.concatenate([[z0], positions[a : b + 1], [z1]])
        ar = np.concatenate([[areas[a]], areas[a : b + 1], [areas[b]]])
        total += float(np.sum((ar[1:] + ar[:-1]) / 2 * np.diff(z)))
    return total


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
        When no contour has at least three points.
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
    positions, groups = _planes(contours, dose)
    di, dj, dk = dose.spacing_mm
    nk, nj, ni = dose.shape
    runs = _runs(positions, caps, fallback_mm=dk)
    volume_est = max(_estimate_volume_mm3(groups, positions, runs), 1e-9)
    h = float(
        np.clip(np.cbrt(volume_est / target_samples), min_spacing_mm, min(di, dj))
    )
    allpts = np.concatenate([np.concatenate(g) for g in groups])
    umin, vmin = allpts.min(axis=0)
    umax, vmax = allpts.max(axis=0)
    zlo = min([positions[0]] + [r[2] for r in runs])
    zhi = max([positions[-1]] + [r[3] for r in runs])
    nplanes_k = int(np.ceil((zhi - zlo) / dk)) + 3
    h = max(h, np.sqrt((umax - umin) * (vmax - vmin) * nplanes_k / _MAX_RASTER_CELLS))
    on_voxels = h >= min(di, dj)
    # Between contour planes the section is interpolated (signed distances) when a
    # supersampled structure is sampled finer than its planes; otherwise each plane's
    # section fills the slab half-way to its neighbours.
    spacing = float(np.median(np.diff(positions))) if len(positions) > 1 else dk
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
        m = 1 + int(np.ceil(_cap_growth_mm(groups, positions, runs) / min(hx, hy)))
        x = umin + (np.arange(-m, ncols + m) + 0.5) * hx
        y = vmin + (np.arange(-m, nrows + m) + 0.5) * hy
    xw = axis_weights(x, di, ni)
    yw = axis_weights(y, dj, nj)
    in_xy = (yw[3][:, None] & xw[3][None, :]).ravel()

    top = max(nk - 2, 0)
    k0 = int(np.clip(np.floor(zlo / dk) - 1, 0, top))
    k1 = min(int(np.clip(np.floor(zhi / dk), 0, top)) + 1, nk - 1)
    if on_voxels:
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
    acc = ColumnHistogram(
        planes,
        k0=k0,
        n_frames=nk,
        dk=dk,
        in_plane=in_xy,
        cell_mm2=hx * hy,
        bin_width_gy=bin_width_gy,
        exact=not on_voxels,
    )
    slabs: list[tuple[int, float, float]] = []
    for a, b, z0, z1 in runs:
        if interpolate and b > a:
            _add_interpolated(acc, groups, positions, (a, b, z0, z1), (x, y))
            continue
        mids = (positions[a:b] + positions[a + 1 : b + 1]) / 2
        lows = np.concatenate([[z0], mids])
        highs = np.concatenate([mids, [z1]])
        slabs += [(a + n, lows[n], highs[n]) for n in range(b - a + 1)]
    _add_slabs(acc, groups, slabs, x, y)

    # Contour vertices on their planes, and those of the outer planes at the ends of the
    # end caps: the extremes of a near-linear field over the structure lie there.
    vertex_sets = list(zip(positions, groups, strict=True))
    vertex_sets += [(z0, groups[a]) for a, _, z0, _ in runs]
    vertex_sets += [(z1, groups[b]) for _, b, _, z1 in runs]
    verts = np.concatenate(
        [
            np.column_stack([np.concatenate(p), np.full(sum(map(len, p)), w)])
            for w, p in vertex_sets
        ]
    )
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


def _add_interpolated(
    acc: ColumnHistogram,
    groups: list[list[FloatArray]],
    positions: FloatArray,
    run: tuple[int, int, float, float],
    raster: tuple[FloatArray, FloatArray],
) -> None:
    """Add a run of planes whose sections are interpolated between the planes.

    The signed distance to the section is interpolated linearly between two planes
    (and continued at the same rate into the end caps), so along each raster column
    the structure is one interval per gap between planes, solved exactly.
    """
    a, b, z0, z1 = run
    x, y = raster
    h = (float(y[1] - y[0]), float(x[1] - x[0]))
    ncell = len(x) * len(y)
    per_batch = max(2, CHUNK_CELLS // ncell)
    z = positions[a : b + 1]
    # Batches of planes overlapping by one, so that every gap has both its planes.
    for s in range(0, b - a, per_batch - 1):
        e = min(s + per_batch, b - a + 1)
        masks = fill_planes(groups[a + s : a + e], x, y)
        # The two planes at each end are continued into the caps: whole raster.
        caps = tuple(q - s for q in (0, 1, b - a - 1, b - a) if s <= q < e)
        sdf = signed_distances(masks, *h, uncropped=caps).reshape(e - s, ncell)
        flat = masks.reshape(e - s, ncell)
        both = np.flatnonzero(flat[:-1] & flat[1:])
        gap, cell = np.divmod(both, ncell)
        acc.add(cell, z[s + gap], z[s + gap + 1])
        xor = np.flatnonzero(flat[:-1] ^ flat[1:])
        gap, cell = np.divmod(xor, ncell)
        za, zb = _linear_inside(
            z[s + gap], z[s + gap + 1], sdf[gap, cell], sdf[gap + 1, cell]
        )
        acc.add(cell, za, zb)
        # End caps: the change between the two outer planes continues beyond them.
        for outer, inner, z_cap in ((0, 1, z0), (b - a, b - a - 1, z1)):
            if z_cap == z[outer] or not (
                s <= min(outer, inner) and max(outer, inner) < e
            ):
                continue
            f_plane, f_inner = sdf[outer - s], sdf[inner - s]
            t = abs(z_cap - z[outer]) / abs(z[inner] - z[outer])
            f_cap = f_plane + t * (f_plane - f_inner)
            cells = np.flatnonzero((f_plane < 0) | (f_cap < 0))
            lo, hi = min(z_cap, z[outer]), max(z_cap, z[outer])
            if z_cap < z[outer]:
                za, zb = _linear_inside(lo, hi, f_cap[cells], f_plane[cells])
            else:
                za, zb = _linear_inside(lo, hi, f_plane[cells], f_cap[cells])
            acc.add(cells, za, zb)


def _linear_inside(
    z_start: float | FloatArray,
    z_end: float | FloatArray,
    f_start: NDArray[np.floating[Any]],
    f_end: NDArray[np.floating[Any]],
) -> tuple[FloatArray, FloatArray]:
    """Where ``f``, linear from ``f_start`` to ``f_end``, is negative: ``[za, zb]``.

    Empty intervals come back with ``zb <= za``.
    """
    f0 = f_start.astype(np.float64)
    f1 = f_end.astype(np.float64)
    neg0, neg1 = f0 < 0, f1 < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        zc = z_start + f0 / (f0 - f1) * (z_end - z_start)
    za: FloatArray = np.where(neg0, z_start, zc)
    zb: FloatArray = np.where(neg1, z_end, zc)
    none = ~(neg0 | neg1)
    za[none] = 0.0
    zb[none] = 0.0
    return za, zb
