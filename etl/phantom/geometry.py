"""Analytic solids of the phantoms and their planar contours (pure numpy).

A :class:`Solid` is a sphere, a right circular cylinder or a right circular cone, given
by its centre, its axis and its size. Every solid is described along its own axis by a
radius profile ``r(s)`` for the axial coordinate ``s`` in ``[s_min, s_max]`` (measured
from the centre along the unit axis ``a``): the solid is the set of points
``c + s a + p`` with ``p`` perpendicular to ``a`` and ``|p| <= r(s)``.

- sphere: diameter ``d``; ``r(s) = sqrt(R**2 - s**2)``, ``s`` in ``[-R, R]``;
- cylinder: diameter ``d`` and height ``h`` (default ``h = d``, as in Nelms 2015);
  ``r(s) = R``, ``s`` in ``[-h/2, h/2]``;
- cone: base diameter ``d`` and height ``h`` (default ``h = d``); the centre is the
  middle of the axis, the base (radius ``R``) at ``s = -h/2`` and the apex at
  ``s = +h/2`` (the apex points along ``axis``); ``r(s) = R (h/2 - s) / h``.

All three solids are convex, which the contouring relies on: the section of a solid by
an axial plane ``z = z0`` is a convex region, traced by casting rays from an interior
point and intersecting them with the surfaces in closed form, then refining the polygon
until no edge is farther than ``tolerance_mm`` from the true boundary (sagitta), so
that the polygon-versus-true-section area error is negligible (relative error about
``4 tolerance / (3 r)`` for a circle of radius ``r``).

References
----------
B. E. Nelms et al., "Methods, software and datasets to verify DVH calculations against
analytical values: twenty years late(r)", Med. Phys. 42 (2015) 4435-4448.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from etl.errors import EtlError

__all__ = [
    "PhantomSpecError",
    "ShapeKind",
    "Solid",
    "parse_axis",
    "polygon_area_mm2",
    "section_polygon",
]

FloatArray = NDArray[np.float64]

#: Tolerance (mm) of the point-in-solid test: faces lying on a plane belong to it.
_EPS_MM = 1e-9
#: Sections smaller than this (mm2) are left out (a tangent point, a cone apex).
_MIN_AREA_MM2 = 1e-4
_MIN_POINTS = 3
_MAX_VERTICES = 100_000  # safety stop of the refinement
_TINY = 1e-14


class PhantomSpecError(EtlError, ValueError):
    """A phantom specification is invalid (shape, size, offset, spacing, dose field)."""


class ShapeKind(StrEnum):
    """Shapes of the analytic phantoms."""

    SPHERE = "sphere"
    CYLINDER = "cylinder"
    CONE = "cone"


_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def parse_axis(axis: str | tuple[float, float, float] | list[float]) -> FloatArray:
    """Return the unit vector of an axis given as ``x``, ``y``, ``z`` or three numbers.

    Parameters
    ----------
    axis
        ``"x"``, ``"y"``, ``"z"`` (optionally signed, ``"-z"``), a string ``"X,Y,Z"``
        or a sequence of three numbers.

    Returns
    -------
    numpy.ndarray
        Unit vector, shape (3,).

    Raises
    ------
    PhantomSpecError
        If the axis is malformed or of zero length.

    Examples
    --------
    >>> parse_axis("-y").tolist()
    [-0.0, -1.0, -0.0]
    """
    if isinstance(axis, str):
        text = axis.strip().lower()
        sign = -1.0 if text.startswith("-") else 1.0
        key = text.lstrip("+-")
        if key in _AXES:
            return sign * np.asarray(_AXES[key], dtype=np.float64)
        try:
            values = [float(v) for v in axis.split(",")]
        except ValueError:
            raise PhantomSpecError(
                f"axis {axis!r}: expected x, y, z or three numbers X,Y,Z"
            ) from None
    else:
        values = [float(v) for v in axis]
    vec = np.asarray(values, dtype=np.float64)
    norm = float(np.linalg.norm(vec)) if vec.shape == (3,) else 0.0
    if vec.shape != (3,) or not np.all(np.isfinite(vec)) or norm == 0.0:
        raise PhantomSpecError(
            f"axis {axis!r}: expected three finite numbers, not all 0"
        )
    return vec / norm


@dataclass(frozen=True)
class Solid:
    """A sphere, cylinder or cone in patient coordinates (mm).

    Parameters
    ----------
    kind
        The shape.
    centre_mm
        Centre (middle of the axis for cylinders and cones), shape (3,).
    axis
        Unit axis, shape (3,) (ignored by spheres; the apex direction of cones).
    diameter_mm
        Diameter (base diameter of cones).
    height_mm
        Height of cylinders and cones (equal to the diameter for spheres).
    """

    kind: ShapeKind
    centre_mm: tuple[float, float, float]
    axis: tuple[float, float, float]
    diameter_mm: float
    height_mm: float

    @classmethod
    def make(
        cls,
        kind: ShapeKind | str,
        diameter_mm: float,
        *,
        centre_mm: tuple[float, float, float] | list[float] = (0.0, 0.0, 0.0),
        axis: str | tuple[float, float, float] | list[float] = "z",
        height_mm: float | None = None,
    ) -> Solid:
        """Validate and build a solid; ``height_mm`` defaults to the diameter."""
        try:
            shape = ShapeKind(str(kind).lower())
        except ValueError:
            choices = ", ".join(s.value for s in ShapeKind)
            raise PhantomSpecError(
                f"shape {kind!r}: unknown (choose {choices})"
            ) from None
        height = (
            diameter_mm if height_mm is None or shape is ShapeKind.SPHERE else height_mm
        )
        for label, value in (("size_mm", diameter_mm), ("height_mm", height)):
            if not math.isfinite(value) or value <= 0:
                raise PhantomSpecError(f"{label} {value!r}: must be a positive number")
        centre = np.asarray(centre_mm, dtype=np.float64)
        if centre.shape != (3,) or not np.all(np.isfinite(centre)):
            raise PhantomSpecError(
                f"offset_mm {centre_mm!r}: expected three numbers X,Y,Z"
            )
        unit = parse_axis(axis)
        return cls(
            shape,
            (float(centre[0]), float(centre[1]), float(centre[2])),
            (float(unit[0]), float(unit[1]), float(unit[2])),
            float(diameter_mm),
            float(height),
        )

    @property
    def radius_mm(self) -> float:
        """Radius (base radius of a cone)."""
        return self.diameter_mm / 2.0

    @property
    def axial_range_mm(self) -> tuple[float, float]:
        """Range of the axial coordinate ``s``."""
        half = self.height_mm / 2.0
        return (-half, half)

    def radius_at(self, s_mm: FloatArray | float) -> FloatArray:
        """Radius ``r(s)`` of the section perpendicular to the axis (0 outside)."""
        s = np.asarray(s_mm, dtype=np.float64)
        r = self.radius_mm
        half = self.height_mm / 2.0
        if self.kind is ShapeKind.SPHERE:
            out = np.sqrt(np.clip(r * r - s * s, 0.0, None))
        elif self.kind is ShapeKind.CYLINDER:
            out = np.where(np.abs(s) <= half, r, 0.0)
        else:
            out = np.where(np.abs(s) <= half, r * (half - s) / self.height_mm, 0.0)
        return np.asarray(out, dtype=np.float64)

    def volume_mm3(self) -> float:
        """Exact volume (mm3)."""
        r = self.radius_mm
        if self.kind is ShapeKind.SPHERE:
            return 4.0 / 3.0 * math.pi * r**3
        if self.kind is ShapeKind.CYLINDER:
            return math.pi * r * r * self.height_mm
        return math.pi * r * r * self.height_mm / 3.0

    def centroid_mm(self) -> FloatArray:
        """Centre of mass (a cone's lies a quarter of the height above its base)."""
        c = np.asarray(self.centre_mm)
        if self.kind is ShapeKind.CONE:
            return c - self.height_mm / 4.0 * np.asarray(self.axis)
        return c

    def support_mm(self, direction: FloatArray) -> tuple[float, float]:
        """Return the minimum and maximum of ``u . x`` over the solid (``u`` unit)."""
        u = np.asarray(direction, dtype=np.float64)
        uc = float(u @ np.asarray(self.centre_mm))
        r = self.radius_mm
        if self.kind is ShapeKind.SPHERE:
            return (uc - r, uc + r)
        cos_t = float(u @ np.asarray(self.axis))
        sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
        half = self.height_mm / 2.0
        if self.kind is ShapeKind.CYLINDER:
            ext = half * abs(cos_t) + r * sin_t
            return (uc - ext, uc + ext)
        apex = half * cos_t
        base = -half * cos_t
        return (uc + min(apex, base - r * sin_t), uc + max(apex, base + r * sin_t))

    def bounds_mm(self) -> tuple[FloatArray, FloatArray]:
        """Axis-aligned bounding box (lower corner, upper corner)."""
        lo, hi = zip(*(self.support_mm(e) for e in np.eye(3)), strict=True)
        return np.asarray(lo), np.asarray(hi)

    def contains(self, points_mm: FloatArray) -> NDArray[np.bool_]:
        """Whether each point (shape (..., 3)) lies in the closed solid."""
        d = np.asarray(points_mm, dtype=np.float64) - np.asarray(self.centre_mm)
        if self.kind is ShapeKind.SPHERE:
            r = self.radius_mm
            inside: NDArray[np.bool_] = (
                np.einsum("...i,...i->...", d, d) <= (r + _EPS_MM) ** 2
            )
            return inside
        s = d @ np.asarray(self.axis)
        perp2 = np.clip(np.einsum("...i,...i->...", d, d) - s * s, 0.0, None)
        half = self.height_mm / 2.0
        in_slab = np.abs(s) <= half + _EPS_MM
        if self.kind is ShapeKind.CYLINDER:
            radius: FloatArray | float = self.radius_mm
        else:
            radius = self.radius_mm * (half - s) / self.height_mm
        return np.asarray(in_slab & (np.sqrt(perp2) <= radius + _EPS_MM))


def polygon_area_mm2(polygon_mm: FloatArray) -> float:
    """Return the signed area (shoelace, > 0 counter-clockwise) of an x-y polygon."""
    x = polygon_mm[:, 0]
    y = polygon_mm[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


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
