"""Planar sections of the analytic solids, traced as polygons (pure numpy).

The section of a (convex) solid by an axial plane ``z = z0`` is traced by casting rays
from an interior point and intersecting them with the surfaces in closed form, then
refining the polygon until no edge is farther than ``tolerance_mm`` from the true
boundary (see :mod:`etl.phantom.geometry`).
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

__all__ = ["section_polygon"]

FloatArray = NDArray[np.float64]


def _interior_point(solid: Solid, z_mm: float) -> FloatArray | None:
    lo, hi = solid.bounds_mm()
    for n in (65, 513):
        xs = np.linspace(lo[0], hi[0], n)
        ys = np.linspace(lo[1], hi[1], n)
        gx, gy = np.meshgrid(xs, ys, indexing="xy")
        pts = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, z_mm)], axis=1)
        inside = pts[solid.contains(pts)]
        if len(inside) >= _MIN_POINTS:
            return np.asarray(inside.mean(axis=0))
    return None


def _smallest_positive_root(a: FloatArray, b: FloatArray, c: FloatArray) -> FloatArray:
    """Smallest positive root of ``a r**2 + 2 b r + c`` (inf if none), elementwise."""
    out = np.full(a.shape, np.inf)
    disc = b * b - a * c
    quad = np.abs(a) > _TINY
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.sqrt(np.where(disc >= 0, disc, np.nan))
        for root in ((-b - sq) / a, (-b + sq) / a):
            ok = quad & np.isfinite(root) & (root > 0)
            out = np.where(ok, np.minimum(out, root), out)
        lin = -c / (2.0 * b)
    ok = ~quad & np.isfinite(lin) & (lin > 0)
    out = np.where(ok, np.minimum(out, lin), out)
    # Starting on the surface (c >= 0) and not heading inwards (b >= 0): exit at once.
    return np.asarray(np.where((c >= 0) & (b >= 0), 0.0, out))


def _ray_exit(solid: Solid, p0: FloatArray, dirs: FloatArray) -> FloatArray:
    """Distance from the interior point ``p0`` to the boundary along unit ``dirs``."""
    d0 = p0 - np.asarray(solid.centre_mm)
    r = solid.radius_mm
    n = len(dirs)
    if solid.kind is ShapeKind.SPHERE:
        bs = dirs @ d0
        cs = float(d0 @ d0) - r * r
        return np.asarray(-bs + np.sqrt(np.clip(bs * bs - cs, 0.0, None)))
    axis = np.asarray(solid.axis)
    half = solid.height_mm / 2.0
    s0 = float(d0 @ axis)
    ea = dirs @ axis
    if solid.kind is ShapeKind.ELLIPSOID:
        # |q|**2 / r**2 + s**2 / half**2 = 1 along the ray (q: part across the axis)
        q0 = d0 - s0 * axis
        qe = dirs - ea[:, None] * axis
        a = np.einsum("ij,ij->i", qe, qe) / r**2 + ea * ea / half**2
        b = (qe @ q0) / r**2 + s0 * ea / half**2
        c = np.full(n, float(q0 @ q0) / r**2 + s0 * s0 / half**2 - 1.0)
        return _smallest_positive_root(a, b, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        slab = np.where(
            ea > _TINY,
            (half - s0) / ea,
            np.where(ea < -_TINY, (-half - s0) / ea, np.inf),
        )
    q0 = d0 - s0 * axis
    qe = dirs - ea[:, None] * axis
    a = np.einsum("ij,ij->i", qe, qe)
    b = qe @ q0
    if solid.kind is ShapeKind.CYLINDER:
        c = np.full(n, float(q0 @ q0) - r * r)
    else:
        k = r / solid.height_mm
        a = a - k * k * ea * ea
        b = b + k * k * (half - s0) * ea
        c = np.full(n, float(q0 @ q0) - k * k * (half - s0) ** 2)
    return np.asarray(np.minimum(slab, _smallest_positive_root(a, b, c)))


def _boundary(solid: Solid, p0: FloatArray, angles: FloatArray) -> FloatArray:
    dirs = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    exit_mm = _ray_exit(solid, p0, dirs)
    # A ray that finds no exit starts on the boundary (a tangent plane): length 0.
    exit_mm = np.where(np.isfinite(exit_mm), exit_mm, 0.0)
    return np.asarray(p0 + exit_mm[:, None] * dirs)


def section_polygon(
    solid: Solid,
    z_mm: float,
    *,
    tolerance_mm: float = 1e-4,
    max_edge_mm: float = 2.0,
) -> FloatArray | None:
    """Trace the section of a solid by the axial plane ``z = z_mm`` as a polygon.

    Parameters
    ----------
    solid
        The (convex) solid.
    z_mm
        Position of the plane.
    tolerance_mm
        Largest distance between an edge of the polygon and the true boundary.
    max_edge_mm
        Longest edge kept (straight boundaries are split into shorter edges).

    Returns
    -------
    numpy.ndarray or None
        Vertices ``(N, 3)`` in counter-clockwise order (all with ``z = z_mm``),
        inscribed in the true section; None when the plane misses the solid or the
        section is smaller than 1e-4 mm2 (a tangent point or a cone apex).
    """
    zmin, zmax = solid.support_mm(np.array([0.0, 0.0, 1.0]))
    if z_mm < zmin - _EPS_MM or z_mm > zmax + _EPS_MM:
        return None
    p0 = _interior_point(solid, z_mm)
    if p0 is None:
        return None
    angles = np.linspace(0.0, 2.0 * np.pi, 128, endpoint=False)
    pts = _boundary(solid, p0, angles)
    if polygon_area_mm2(pts) < _MIN_AREA_MM2:  # a tangent segment or point
        return None
    for _ in range(40):
        nxt_angles = np.append(angles[1:], angles[0] + 2.0 * np.pi)
        mid_angles = 0.5 * (angles + nxt_angles)
        a = pts
        b = np.roll(pts, -1, axis=0)
        m = _boundary(solid, p0, mid_angles)
        edge = b - a
        length = np.hypot(edge[:, 0], edge[:, 1])
        cross = edge[:, 0] * (m[:, 1] - a[:, 1]) - edge[:, 1] * (m[:, 0] - a[:, 0])
        sagitta = np.abs(cross) / np.maximum(length, 1e-300)
        split = (sagitta > tolerance_mm) | (length > max_edge_mm)
        if not np.any(split) or len(pts) > _MAX_VERTICES:
            break
        order = np.argsort(np.concatenate([angles, mid_angles[split]]), kind="stable")
        angles = np.concatenate([angles, mid_angles[split]])[order]
        pts = np.concatenate([pts, m[split]])[order]
    # Drop repeated vertices (rays meeting at a corner or a degenerate section).
    keep = np.hypot(*(np.roll(pts, -1, axis=0) - pts)[:, :2].T) > _EPS_MM
    pts = pts[keep]
    if len(pts) < _MIN_POINTS or polygon_area_mm2(pts) < _MIN_AREA_MM2:
        return None
    return np.asarray(pts, dtype=np.float64)
