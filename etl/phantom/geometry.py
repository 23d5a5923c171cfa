"""Analytic solids of the phantoms and their planar contours (pure numpy).

A :class:`Solid` is a sphere, a right circular cylinder, a right circular cone or an
ellipsoid of revolution (a spheroid), given
by its centre, its axis and its size. Every solid is described along its own axis by a
radius profile ``r(s)`` for the axial coordinate ``s`` in ``[s_min, s_max]`` (measured
from the centre along the unit axis ``a``): the solid is the set of points
``c + s a + p`` with ``p`` perpendicular to ``a`` and ``|p| <= r(s)``.

- sphere: diameter ``d``; ``r(s) = sqrt(R**2 - s**2)``, ``s`` in ``[-R, R]``;
- cylinder: diameter ``d`` and height ``h`` (default ``h = d``, as in Nelms 2015);
  ``r(s) = R``, ``s`` in ``[-h/2, h/2]``;
- ellipsoid: equatorial diameter ``d`` and polar height ``h`` along the axis (default
  ``h = d``, a sphere); ``r(s) = R sqrt(1 - (2 s / h)**2)``, ``s`` in ``[-h/2, h/2]``;
- cone: base diameter ``d`` and height ``h`` (default ``h = d``); the centre is the
  middle of the axis, the base (radius ``R``) at ``s = -h/2`` and the apex at
  ``s = +h/2`` (the apex points along ``axis``); ``r(s) = R (h/2 - s) / h``.

All the solids are convex, which the contouring relies on: the section of a solid by
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
    ELLIPSOID = "ellipsoid"


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
    """A sphere, cylinder, cone or ellipsoid of revolution in patient coordinates (mm).

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
        Height of cylinders and cones, polar height of ellipsoids (the diameter for
        spheres).
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
        elif self.kind is ShapeKind.ELLIPSOID:
            out = r * np.sqrt(np.clip(1.0 - (s / half) ** 2, 0.0, None))
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
        if self.kind is ShapeKind.ELLIPSOID:
            return 4.0 / 3.0 * math.pi * r * r * self.height_mm / 2.0
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
        if self.kind is ShapeKind.ELLIPSOID:
            ext = math.hypot(half * cos_t, r * sin_t)
            return (uc - ext, uc + ext)
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
        if self.kind is ShapeKind.ELLIPSOID:
            r, hh = self.radius_mm + _EPS_MM, half + _EPS_MM
            return np.asarray(perp2 / (r * r) + s * s / (hh * hh) <= 1.0)
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


def __getattr__(name: str) -> object:
    # section_polygon moved to etl.phantom.sections (it needs Solid, defined here)
    if name == "section_polygon":
        from etl.phantom.sections import section_polygon

        return section_polygon
    raise AttributeError(name)
