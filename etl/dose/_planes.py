"""Contour planes, runs of planes and their ends for the DVH engine (private).

A structure is a list of planes (positions along the slice normal, grid mm), each with
its polygons. Planes form runs (split at gaps); each run has two ends:

* a **tip**: the outermost plane holds a degenerate section (a polygon of near-zero
  area, a line or a single point, as a planning system writes the section of a plane
  touching a pole). The solid ends on that plane, narrowing to it from its neighbour.
* a **pointed** end: the sections shrink towards the end, and their area, continued
  by a parabola through the outer three planes (exact for spheres, ellipsoids and
  cones), vanishes within one spacing beyond the outer plane. The solid narrows to a
  point there (a pole between the planes).
* a **flat** end: otherwise, the ``half`` convention (half a spacing beyond, the
  section changing at the rate between the two outer planes) or ``none``.

Narrowing ends follow a power law ``area ~ u ** (2 alpha)`` of the distance ``u`` to
the tip, ``alpha`` taken from the areas of the two planes next to the end (1 for a
cone, 1/2 at the pole of a smooth surface).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from etl.dose._raster import next_vertex
from etl.dose.grid import DoseGrid
from etl.errors import ContourWarning, GeometryError, StructureError

FloatArray = NDArray[np.float64]

_PLANE_TOLERANCE_MM = 0.05  # largest out-of-plane spread of one contour
_PLANE_MERGE_MM = 0.01  # contours whose planes differ by less share a plane
_GAP_FACTOR = 1.75  # spacing above this times the median splits runs of planes
_TIP_FRACTION = 0.05  # an end section below this fraction of its neighbour is a tip
_MIN_TIP_REACH = 0.25  # a pointed end reaches at least this many spacings
_REACH_SLACK = 0.02  # a trend vanishing this little beyond the next plane: on it
_MIN_POINTS = 3
_DOUBLE_ROOT = 0.05  # complex roots this close (in spacings) are one real root


@dataclass(frozen=True)
class End:
    """One end of a run of planes.

    Attributes
    ----------
    outer
        Index of the outermost plane.
    z_outer
        Its position (grid mm).
    z
        Where the solid ends (grid mm along the normal).
    area
        For a narrowing end, the coefficients of the section area (mm2) as a
        polynomial of the position (``numpy.polyval``); None for a flat end.
    z_from
        Where the narrowing starts: the outer plane of a pointed end, the plane next
        to a tip.
    tip
        Whether the outer plane itself is the (degenerate) tip.
    """

    outer: int
    z_outer: float
    z: float
    area: tuple[float, ...] | None
    z_from: float
    tip: bool


@dataclass(frozen=True)
class Run:
    """A run of planes ``first..last`` and its two ends."""

    first: int
    last: int
    start: End
    end: End

    def slab_bounds(self) -> tuple[float, float]:
        """Return the ends for slab stacking (a pointed end: half its reach, flat)."""
        z0, z1 = self.start.z, self.end.z
        if self.start.area is not None and not self.start.tip:
            z0 = (z0 + self.start.z_outer) / 2
        if self.end.area is not None and not self.end.tip:
            z1 = (z1 + self.end.z_outer) / 2
        return z0, z1

    @property
    def z0(self) -> float:
        """Lower end of the solid (grid mm)."""
        return self.start.z

    @property
    def z1(self) -> float:
        """Upper end of the solid (grid mm)."""
        return self.end.z


def contour_planes(
    contours: Sequence[FloatArray], dose: DoseGrid
) -> tuple[FloatArray, list[list[FloatArray]]]:
    """Group contours (in grid mm) by plane; return plane positions and 2-D polygons.

    Contours of one or two points are kept (a degenerate section: the tip of the
    solid) with a :class:`~etl.errors.ContourWarning`.
    """
    arrays: list[FloatArray] = []
    proper = 0
    for n, pts in enumerate(contours):
        arr = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        if len(arr) == 0:
            continue
        if len(arr) < _MIN_POINTS:
            warnings.warn(
                f"contour {n} has {len(arr)} point(s), fewer than three; kept as a "
                "degenerate section (the tip of the solid)",
                ContourWarning,
                stacklevel=4,
            )
        else:
            proper += 1
        arrays.append(arr)
    if not proper:
        raise StructureError("no contour with at least three points")
    # All contours in the grid frame at once; then per contour its plane.
    g = dose.to_grid_mm(np.concatenate(arrays))
    starts = np.cumsum([0] + [len(a) for a in arrays[:-1]])
    spread = np.maximum.reduceat(g[:, 2], starts) - np.minimum.reduceat(g[:, 2], starts)
    bad = np.flatnonzero(spread > _PLANE_TOLERANCE_MM)
    if bad.size:
        n = int(bad[0])
        raise GeometryError(
            f"contour {n} is not on a plane parallel to the dose-grid slices "
            f"(spread {float(spread[n]):.3f} mm across the slice normal)"
        )
    means = np.add.reduceat(g[:, 2], starts) / [len(a) for a in arrays]
    flat = sorted(
        zip(means.tolist(), np.split(g[:, :2], starts[1:]), strict=True),
        key=lambda t: t[0],
    )
    positions: list[float] = []
    groups: list[list[FloatArray]] = []
    for w, poly in flat:
        if positions and w - positions[-1] <= _PLANE_MERGE_MM:
            groups[-1].append(poly)
        else:
            positions.append(w)
            groups.append([poly])
    return np.asarray(positions), groups


def section_areas(groups: list[list[FloatArray]]) -> FloatArray:
    """Even-odd area (mm2) of each plane's section (sum of polygon areas)."""
    polys = [p for ps in groups for p in ps]
    pts = np.concatenate(polys)
    nxt = pts[next_vertex([len(p) for p in polys])]
    cross = pts[:, 0] * nxt[:, 1] - pts[:, 1] * nxt[:, 0]
    starts = np.cumsum([0] + [len(p) for p in polys[:-1]])
    poly_areas = np.abs(np.add.reduceat(cross, starts)) / 2
    owner = np.repeat(np.arange(len(groups)), [len(ps) for ps in groups])
    return np.bincount(owner, weights=poly_areas, minlength=len(groups)).astype(
        np.float64
    )


def _end(positions: FloatArray, areas: FloatArray, order: list[int], half: bool) -> End:
    """Decide the end of a run at ``order[0]`` (planes listed from the end inwards)."""
    outer = order[0]
    z_out = float(positions[outer])
    if len(order) < 2:  # noqa: PLR2004
        return End(outer, z_out, z_out, None, z_out, tip=False)
    inner = order[1]
    z_in = float(positions[inner])
    spacing = abs(z_in - z_out)
    sign = 1.0 if z_out > z_in else -1.0
    a_out, a_in = float(areas[outer]), float(areas[inner])
    z, a = positions[order], areas[order]
    if a_out < _TIP_FRACTION * a_in:
        coef = np.polyfit(z, a, len(order) - 1)
        return End(outer, z_out, z_out, _coefficients(coef), z_in, tip=True)
    if a_out < a_in:
        coef = np.polyfit(z, a, len(order) - 1)
        roots = np.roots(coef) if np.any(coef[:-1]) else np.zeros(0)
        # A double root (a cone's apex) may come out as a close complex pair.
        real = roots[np.abs(roots.imag) <= _DOUBLE_ROOT * spacing].real
        reach = (real - z_out) * sign
        ahead = reach[(reach > 0) & (reach <= spacing * (1 + _REACH_SLACK))]
        if ahead.size:
            r = min(float(ahead.min()), spacing)
            if r < _MIN_TIP_REACH * spacing:
                # Too short to trust the trend: a paraboloid over the shortest reach.
                r = _MIN_TIP_REACH * spacing
                coef = np.polyfit([z_out, z_out + sign * r], [a_out, 0.0], 1)
            end = z_out + sign * r
            return End(outer, z_out, end, _coefficients(coef), z_out, tip=False)
    z_end = z_out + sign * spacing / 2 if half else z_out
    return End(outer, z_out, z_end, None, z_out, tip=False)


def _coefficients(coef: FloatArray) -> tuple[float, ...]:
    return tuple(float(c) for c in coef)


def median(values: FloatArray) -> float:
    """``float(np.median(values))`` of a non-empty 1-D array, bit for bit.

    ``np.median`` imports ``numpy.ma`` for its NaN check (0.02 s of a whole
    ``rtcohort dvh`` run); this sorts and averages the middle pair the same way.
    """
    ordered = np.sort(values)
    mid = len(ordered) // 2
    if np.isnan(ordered[-1]):
        return float("nan")
    if len(ordered) % 2:
        return float(ordered[mid])
    return float((ordered[mid - 1] + ordered[mid]) / 2)


def plan_runs(
    positions: FloatArray,
    groups: list[list[FloatArray]],
    half: bool,
    fallback_mm: float,
) -> list[Run]:
    """Split planes at gaps into runs and decide how each run ends.

    A run of one plane is a slab of one typical spacing (``half``) or has no volume
    (left out).
    """
    areas = section_areas(groups)
    diffs = np.diff(positions)
    typical = median(diffs) if len(diffs) else fallback_mm
    breaks = np.nonzero(diffs > _GAP_FACTOR * typical)[0]
    firsts = np.concatenate([[0], breaks + 1]).astype(int)
    lasts = np.concatenate([breaks, [len(positions) - 1]]).astype(int)
    runs = []
    for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
        if a == b:
            if half:
                z = float(positions[a])
                runs.append(
                    Run(
                        a,
                        a,
                        End(a, z, z - typical / 2, None, z, tip=False),
                        End(a, z, z + typical / 2, None, z, tip=False),
                    )
                )
            continue
        up = list(range(a, b + 1))
        runs.append(
            Run(
                a,
                b,
                _end(positions, areas, up[:3], half),
                _end(positions, areas, up[::-1][:3], half),
            )
        )
    return runs


def cap_growth_mm(
    groups: list[list[FloatArray]], positions: FloatArray, runs: list[Run]
) -> float:
    """How far flat end caps may reach beyond the outer sections (bounding boxes)."""
    growth = 0.0
    for run in runs:
        if run.last == run.first:
            continue
        for end, inner in ((run.start, run.first + 1), (run.end, run.last - 1)):
            if end.area is not None:
                continue  # narrowing ends stay within the outer section
            outer = end.outer
            t = abs(end.z - positions[outer]) / abs(positions[inner] - positions[outer])
            po, pi = np.concatenate(groups[outer]), np.concatenate(groups[inner])
            beyond = np.concatenate(
                [pi.min(axis=0) - po.min(axis=0), po.max(axis=0) - pi.max(axis=0)]
            )
            growth = max(growth, t * float(beyond.max()))
    return growth


def estimate_volume_mm3(
    groups: list[list[FloatArray]], positions: FloatArray, runs: list[Run]
) -> float:
    """Rough volume (trapezoids between the planes, flat caps) to size the raster."""
    areas = section_areas(groups)
    total = 0.0
    for run in runs:
        a, b = run.first, run.last
        z = np.concatenate([[run.z0], positions[a : b + 1], [run.z1]])
        ar = np.concatenate([[areas[a]], areas[a : b + 1], [areas[b]]])
        total += float(np.sum((ar[1:] + ar[:-1]) / 2 * np.diff(z)))
    return total
