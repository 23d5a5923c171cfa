"""Dose that conforms to a target: fall-off from its surface, plus beam paths (pure).

A realistic plan gives the prescription dose inside the PTV, falls off steeply outside
it (the penumbra), leaves a low-dose bath around it and adds dose along the beams'
entrance and exit paths. :class:`DoseModel` is the sum of

- a linear field (:class:`~etl.phantom.truth.LinearDoseField`, the classic phantom
  dose, exact under trilinear interpolation);
- :class:`ConformalDose` components: ``dose_gy * g(d)`` with ``d`` the distance (mm)
  from the target surface along the ray from its centre (negative inside) and::

      g(d) = (1 - a) Phi(-(d - 2 sigma) / sigma) + a exp(-max(d, 0) / lambda)

  ``Phi`` the standard normal CDF, ``sigma = penumbra_mm / 1.683`` (so the 80 %-20 %
  distance of the sigmoid is ``penumbra_mm``; the surface gets ``Phi(2)`` = 97.7 % of
  it), ``a = tail_fraction`` and ``lambda = tail_mm`` (the low-dose bath);
- :class:`BeamDose` components: ``dose_gy Phi((R - rho) / sigma_b) exp(-mu t)``, a
  cylinder of radius ``R`` around the line through ``through_mm`` along ``direction``,
  ``rho`` the distance from that line, ``t`` the depth along the direction from
  ``through_mm`` (entrance side ``t < 0`` gets more, exit side less), ``mu``
  ``attenuation_per_mm``.

The target of a conformal component is a sphere or an ellipsoid of revolution: for a
sphere ``d = |x - c| - R`` is the exact distance; for an ellipsoid ``d = t (1 - 1/q)``
with ``t = |x - c|`` and ``q`` the ellipsoidal radius (1 on the surface), the distance
along the ray from the centre. A target may be a union of disjoint such solids (a
primary and a nodal PTV): ``d`` is then the smallest of the parts' distances (for
spheres the exact signed distance to the union), so the union gets one prescription
and one fall-off, with no dose summed where the parts' tails meet. Every component is
continuous (smooth away from where two parts are equally near) and non-negative when
its ``dose_gy`` is. DVHs in such a field are computed numerically
(:mod:`etl.phantom.truth_numeric`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from etl.phantom.geometry import ShapeKind, Solid
from etl.phantom.truth import LinearDoseField

__all__ = [
    "PENUMBRA_SIGMAS",
    "BeamDose",
    "ConformalDose",
    "DoseModel",
    "target_radius_mm",
]

FloatArray = NDArray[np.float64]

#: The 80 %-20 % width of a normal CDF in units of its sigma (2 x 0.8416).
PENUMBRA_SIGMAS = 2.0 * 0.8416212335729143


@dataclass(frozen=True)
class ConformalDose:
    """``dose_gy`` inside a target (sphere or ellipsoid), falling off outside it.

    ``also`` holds further disjoint parts of the target (a union): the distance is
    then the smallest of the parts' distances.
    """

    target: Solid
    dose_gy: float
    penumbra_mm: float = 8.0
    tail_fraction: float = 0.2
    tail_mm: float = 20.0
    also: tuple[Solid, ...] = ()

    def surface_distance_mm(self, points_mm: FloatArray) -> FloatArray:
        """Distance from the surface along the ray from the centre (< 0 inside).

        Examples
        --------
        >>> a, b = Solid.make("sphere", 20.0), Solid.make("sphere", 10.0, centre_mm=(50, 0, 0))
        >>> ConformalDose(a, 60.0, also=(b,)).surface_distance_mm(np.array([[40.0, 0, 0]]))
        array([5.])
        """  # noqa: E501
        pts = np.asarray(points_mm, dtype=np.float64)
        out = _ray_distance_mm(self.target, pts)
        for part in self.also:
            out = np.minimum(out, _ray_distance_mm(part, pts))
        return out

    def dose_at(self, points_mm: FloatArray) -> FloatArray:
        """Dose (Gy) at points of shape (..., 3)."""
        d = self.surface_distance_mm(points_mm)
        sigma = self.penumbra_mm / PENUMBRA_SIGMAS
        a = self.tail_fraction
        core = ndtr(-(d - 2.0 * sigma) / sigma)
        tail = np.exp(-np.clip(d, 0.0, None) / self.tail_mm)
        return np.asarray(self.dose_gy * ((1.0 - a) * core + a * tail))


def _ray_distance_mm(solid: Solid, points_mm: FloatArray) -> FloatArray:
    """Distance from a sphere's or ellipsoid's surface along the ray from its centre."""
    d = points_mm - np.asarray(solid.centre_mm)
    t = np.sqrt(np.einsum("...i,...i->...", d, d))
    if solid.kind is ShapeKind.SPHERE:
        return np.asarray(t - solid.radius_mm)
    s = d @ np.asarray(solid.axis)
    perp2 = np.clip(t * t - s * s, 0.0, None)
    half = solid.height_mm / 2.0
    q = np.sqrt(perp2 / solid.radius_mm**2 + s * s / half**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(q > 0.0, t * (1.0 - 1.0 / q), -min(solid.radius_mm, half))
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class BeamDose:
    """Dose along a beam path: a soft-edged cylinder with depth attenuation."""

    through_mm: tuple[float, float, float]
    direction: tuple[float, float, float]
    radius_mm: float
    dose_gy: float
    penumbra_mm: float = 6.0
    attenuation_per_mm: float = 0.005

    def dose_at(self, points_mm: FloatArray) -> FloatArray:
        """Dose (Gy) at points of shape (..., 3)."""
        d = np.asarray(points_mm, dtype=np.float64) - np.asarray(self.through_mm)
        u = np.asarray(self.direction)
        depth = d @ u
        rho = np.sqrt(
            np.clip(np.einsum("...i,...i->...", d, d) - depth * depth, 0.0, None)
        )
        sigma = self.penumbra_mm / PENUMBRA_SIGMAS
        lateral = ndtr((self.radius_mm - rho) / sigma)
        return np.asarray(
            self.dose_gy * lateral * np.exp(-self.attenuation_per_mm * depth)
        )


@dataclass(frozen=True)
class DoseModel:
    """A linear field plus conformal and beam components (all summed)."""

    linear: LinearDoseField
    conformal: tuple[ConformalDose, ...] = ()
    beams: tuple[BeamDose, ...] = ()

    @property
    def is_linear(self) -> bool:
        """Whether the model is just its linear field (exact closed-form truth)."""
        return not self.conformal and not self.beams

    def dose_at(self, points_mm: FloatArray) -> FloatArray:
        """Dose (Gy) at points of shape (..., 3).

        Examples
        --------
        >>> s = Solid.make("sphere", 20.0)
        >>> m = DoseModel(LinearDoseField(0.0), (ConformalDose(s, 60.0),))
        >>> round(float(m.dose_at(np.zeros(3))), 1)
        60.0
        """
        pts = np.asarray(points_mm, dtype=np.float64)
        total = np.asarray(self.linear.dose_at(pts), dtype=np.float64)
        for comp in self.conformal:
            total = total + comp.dose_at(pts)
        for beam in self.beams:
            total = total + beam.dose_at(pts)
        return total

    def describe(self) -> dict[str, object]:
        """Return the model as JSON-ready data (for ``truth.json``)."""
        return {
            "conformal": [
                {
                    "target_centre_mm": list(c.target.centre_mm),
                    "target_shape": str(c.target.kind),
                    "dose_gy": c.dose_gy,
                    "penumbra_mm": c.penumbra_mm,
                    "tail_fraction": c.tail_fraction,
                    "tail_mm": c.tail_mm,
                }
                | (
                    {"more_target_centres_mm": [list(p.centre_mm) for p in c.also]}
                    if c.also
                    else {}
                )
                for c in self.conformal
            ],
            "beams": [
                {
                    "through_mm": list(b.through_mm),
                    "direction": list(b.direction),
                    "radius_mm": b.radius_mm,
                    "dose_gy": b.dose_gy,
                    "penumbra_mm": b.penumbra_mm,
                    "attenuation_per_mm": b.attenuation_per_mm,
                }
                for b in self.beams
            ],
        }


def target_radius_mm(solid: Solid) -> float:
    """Return the largest radius of a sphere or ellipsoid (the default beam radius)."""
    return max(solid.radius_mm, solid.height_mm / 2.0)
