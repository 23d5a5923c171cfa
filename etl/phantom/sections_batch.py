"""Planar sections of one solid on many planes at once (the phantom writer's path).

:func:`section_polygons` traces the same polygons as
:func:`etl.phantom.sections.section_polygon` called plane by plane (same interior
point, same rays, same refinement), but refines every plane's polygon in one set of
array operations: the per-call overhead of numpy dominated the writer.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from etl.phantom.geometry import (
    _EPS_MM,
    _MAX_VERTICES,
    _MIN_AREA_MM2,
    _MIN_POINTS,
    _TINY,
    ShapeKind,
    Solid,
    polygon_area_mm2,
)
from etl.phantom.sections import _interior_point, _smallest_positive_root

__all__ = ["section_polygons"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

_GRID = 65  # the interior point's first grid (then 513, plane by plane)
_RAYS = 128
_ROUNDS = 40


def _rowdot(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.asarray(np.einsum("ij,ij->i", a, b))


def _interior_points(solid: Solid, planes: FloatArray) -> list[FloatArray | None]:
    """Return each plane's interior point (as ``_interior_point``), or None."""
    lo, hi = solid.bounds_mm()
    xs = np.linspace(lo[0], hi[0], _GRID)
    ys = np.linspace(lo[1], hi[1], _GRID)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    n = gx.size
    pts = np.empty((len(planes), n, 3))
    pts[:, :, 0] = gx.ravel()
    pts[:, :, 1] = gy.ravel()
    pts[:, :, 2] = planes[:, None]
    inside = solid.contains(pts)
    out: list[FloatArray | None] = []
    for k, z in enumerate(planes):
        hit = pts[k][inside[k]]
        if len(hit) >= _MIN_POINTS:
            out.append(np.asarray(hit.mean(axis=0)))
        else:  # a thin section: the finer grid, as section_polygon does
            out.append(_interior_point(solid, float(z)))
    return out


def _ray_exit(solid: Solid, d0: FloatArray, dirs: FloatArray) -> FloatArray:
    """Distance to the boundary along unit ``dirs`` from ``centre + d0`` (per row)."""
    r = solid.radius_mm
    if solid.kind is ShapeKind.SPHERE:
        bs = _rowdot(dirs, d0)
        cs = _rowdot(d0, d0) - r * r
        return np.asarray(-bs + np.sqrt(np.clip(bs * bs - cs, 0.0, None)))
    axis = np.asarray(solid.axis)
    half = solid.height_mm / 2.0
    s0 = d0 @ axis
    ea = dirs @ axis
    q0 = d0 - s0[:, None] * axis
    qe = dirs - ea[:, None] * axis
    q0q0 = _rowdot(q0, q0)
    if solid.kind is ShapeKind.ELLIPSOID:
        a = _rowdot(qe, qe) / r**2 + ea * ea / half**2
        b = _rowdot(qe, q0) / r**2 + s0 * ea / half**2
        c = q0q0 / r**2 + s0 * s0 / half**2 - 1.0
        return _smallest_positive_root(a, b, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        slab = np.where(
            ea > _TINY,
            (half - s0) / ea,
            np.where(ea < -_TINY, (-half - s0) / ea, np.inf),
        )
    a = _rowdot(qe, qe)
    b = _rowdot(qe, q0)
    if solid.kind is ShapeKind.CYLINDER:
        c = q0q0 - r * r
    else:
        k = r / solid.height_mm
        a = a - k * k * ea * ea
        b = b + k * k * (half - s0) * ea
        c = q0q0 - k * k * (half - s0) ** 2
    return np.asarray(np.minimum(slab, _smallest_positive_root(a, b, c)))


def _boundary(solid: Solid, p0: FloatArray, angles: FloatArray) -> FloatArray:
    """Boundary points along ``angles`` from the interior points ``p0`` (per row)."""
    dirs = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    exit_mm = _ray_exit(solid, p0 - np.asarray(solid.centre_mm), dirs)
    exit_mm = np.where(np.isfinite(exit_mm), exit_mm, 0.0)
    return np.asarray(p0 + exit_mm[:, None] * dirs)


def _next_in_group(group: IntArray) -> tuple[IntArray, NDArray[np.bool_]]:
    """Index of each vertex's successor in its (cyclic) polygon, and the last ones."""
    nxt = np.arange(1, len(group) + 1)
    last = np.ones(len(group), dtype=bool)
    last[:-1] = group[1:] != group[:-1]
    first = np.flatnonzero(np.concatenate([[True], last[:-1]]))
    nxt[last] = first
    return nxt, last


def _area_ok(pts: FloatArray) -> bool:
    return polygon_area_mm2(pts) >= _MIN_AREA_MM2


def section_polygons(
    solid: Solid,
    planes_mm: FloatArray,
    *,
    tolerance_mm: float = 1e-4,
    max_edge_mm: float = 2.0,
) -> list[FloatArray | None]:
    """Return :func:`~etl.phantom.sections.section_polygon` of each plane.

    Parameters
    ----------
    solid
        The (convex) solid.
    planes_mm
        Positions ``z`` of the axial planes.
    tolerance_mm, max_edge_mm
        As :func:`~etl.phantom.sections.section_polygon`.

    Returns
    -------
    list
        One ``(N, 3)`` polygon (or None) per plane, in the order of ``planes_mm``.
    """
    planes = np.asarray(planes_mm, dtype=np.float64)
    out: list[FloatArray | None] = [None] * len(planes)
    zmin, zmax = solid.support_mm(np.array([0.0, 0.0, 1.0]))
    near = np.flatnonzero((planes >= zmin - _EPS_MM) & (planes <= zmax + _EPS_MM))
    interior = _interior_points(solid, planes[near])
    idx = [int(k) for k, p in zip(near, interior, strict=True) if p is not None]
    if not idx:
        return out
    p0 = np.array([p for p in interior if p is not None])
    base = np.linspace(0.0, 2.0 * np.pi, _RAYS, endpoint=False)
    group = np.repeat(np.arange(len(idx)), _RAYS)
    angles = np.tile(base, len(idx))
    pts = _boundary(solid, p0[group], angles)
    keep = [_area_ok(poly) for poly in np.split(pts, np.arange(1, len(idx)) * _RAYS)]
    live = np.array(keep, dtype=bool)[group]
    group, angles, pts = group[live], angles[live], pts[live]
    done: dict[int, FloatArray] = {}
    for _ in range(_ROUNDS):
        if not len(group):
            break
        nxt, last = _next_in_group(group)
        nxt_angles = np.where(last, angles[nxt] + 2.0 * np.pi, angles[nxt])
        mid_angles = 0.5 * (angles + nxt_angles)
        m = _boundary(solid, p0[group], mid_angles)
        edge = pts[nxt] - pts
        length = np.hypot(edge[:, 0], edge[:, 1])
        cross = edge[:, 0] * (m[:, 1] - pts[:, 1]) - edge[:, 1] * (m[:, 0] - pts[:, 0])
        sagitta = np.abs(cross) / np.maximum(length, 1e-300)
        split = (sagitta > tolerance_mm) | (length > max_edge_mm)
        counts = np.bincount(group, minlength=len(idx))
        splits = np.bincount(group, weights=split, minlength=len(idx))
        finished = (splits == 0) | (counts > _MAX_VERTICES)
        ends = finished[group]
        done.update(_polygons(group[ends], pts[ends]))
        split &= ~ends
        go = ~ends
        group = np.concatenate([group[go], group[split]])
        angles = np.concatenate([angles[go], mid_angles[split]])
        pts = np.concatenate([pts[go], m[split]])
        order = np.lexsort((angles, group))
        group, angles, pts = group[order], angles[order], pts[order]
    done.update(_polygons(group, pts))  # out of rounds
    for g, poly in done.items():
        out[idx[g]] = _tidy(poly)
    return out


def _polygons(group: IntArray, pts: FloatArray) -> dict[int, FloatArray]:
    """Split the vertices (sorted by ``group``) into each group's polygon."""
    if not len(group):
        return {}
    cuts = np.flatnonzero(group[1:] != group[:-1]) + 1
    firsts = np.concatenate([[0], cuts])
    return {
        int(group[i]): poly for i, poly in zip(firsts, np.split(pts, cuts), strict=True)
    }


def _tidy(pts: FloatArray) -> FloatArray | None:
    """Drop repeated vertices; None for a degenerate section (as section_polygon)."""
    keep = np.hypot(*(np.roll(pts, -1, axis=0) - pts)[:, :2].T) > _EPS_MM
    pts = pts[keep]
    if len(pts) < _MIN_POINTS or polygon_area_mm2(pts) < _MIN_AREA_MM2:
        return None
    return np.asarray(pts, dtype=np.float64)
