"""Spec parts for conformal dose, beam paths and union ROIs (pydantic; pure).

JSON (keys of the phantom spec, all optional)::

    "conformal": [{"target": "PTV", "dose_gy": 60, "penumbra_mm": 8,
                   "tail_fraction": 0.2, "tail_mm": 20}],
    "beam_fields": [{"target": "PTV", "direction": "x", "dose_gy": 4,
                     "margin_mm": 5, "radius_mm": null, "penumbra_mm": 6,
                     "attenuation_per_mm": 0.005}],
    "unions": [{"name": "Lungs", "of": ["Lung_L", "Lung_R"],
                "interpreted_type": "ORGAN"}]

The models of the components are in :mod:`etl.phantom.conformal`. A conformal target is
a sphere or an ellipsoid ROI, or a union of such ROIs (one fall-off from the union);
a beam passes through its target's centre with radius ``radius_mm`` (default: the
target's largest radius plus ``margin_mm``). A union is an extra ROI made of disjoint
ROIs (written as all their contours, no CT painting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from etl.phantom.conformal import BeamDose, ConformalDose, target_radius_mm
from etl.phantom.geometry import PhantomSpecError, ShapeKind, Solid, parse_axis

__all__ = ["BeamFieldSpec", "ConformalSpec", "UnionSpec", "check_union_disjoint"]

AxisValue = str | tuple[float, float, float]


class ConformalSpec(BaseModel):
    """A dose conforming to a target ROI (see :class:`ConformalDose`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(min_length=1, max_length=64)
    dose_gy: float = Field(ge=0.0, allow_inf_nan=False)
    penumbra_mm: float = Field(default=8.0, gt=0.0, le=100.0)
    tail_fraction: float = Field(default=0.2, ge=0.0, le=1.0)
    tail_mm: float = Field(default=20.0, gt=0.0, le=1000.0)

    def component(
        self,
        solids: dict[str, Solid],
        unions: Mapping[str, Sequence[Solid]] | None = None,
    ) -> ConformalDose:
        """Return the component on its target's solid (or a union's solids)."""
        if unions is not None and self.target in unions and self.target not in solids:
            parts = {
                f"{self.target}[{k}]": p for k, p in enumerate(unions[self.target])
            }
            first, *more = (_target(parts, n, "conformal") for n in parts)
        else:
            first, more = _target(solids, self.target, "conformal"), []
        return ConformalDose(
            first,
            self.dose_gy,
            self.penumbra_mm,
            self.tail_fraction,
            self.tail_mm,
            tuple(more),
        )


class BeamFieldSpec(BaseModel):
    """A beam path through a target ROI's centre (see :class:`BeamDose`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(min_length=1, max_length=64)
    direction: AxisValue
    dose_gy: float = Field(ge=0.0, allow_inf_nan=False)
    margin_mm: float = Field(default=5.0, ge=0.0, le=100.0)
    radius_mm: float | None = Field(default=None, gt=0.0, le=500.0)
    penumbra_mm: float = Field(default=6.0, gt=0.0, le=100.0)
    attenuation_per_mm: float = Field(default=0.005, ge=0.0, le=0.1)

    @field_validator("direction")
    @classmethod
    def _direction(cls, value: AxisValue) -> AxisValue:
        parse_axis(value)
        return value

    def component(self, solids: dict[str, Solid]) -> BeamDose:
        """Return the component through its target's centre."""
        solid = _target(solids, self.target, "beam_fields")
        u = parse_axis(self.direction)
        radius = self.radius_mm or target_radius_mm(solid) + self.margin_mm
        return BeamDose(
            solid.centre_mm,
            (float(u[0]), float(u[1]), float(u[2])),
            radius,
            self.dose_gy,
            self.penumbra_mm,
            self.attenuation_per_mm,
        )


class UnionSpec(BaseModel):
    """An extra ROI made of disjoint ROIs (e.g. ``Lungs`` of ``Lung_L``, ``Lung_R``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    of: tuple[str, ...] = Field(min_length=2)
    interpreted_type: Literal[
        "EXTERNAL", "PTV", "CTV", "GTV", "ORGAN", "AVOIDANCE", "CONTROL"
    ] = "ORGAN"


def _target(solids: dict[str, Solid], name: str, where: str) -> Solid:
    solid = solids.get(name)
    if solid is None:
        raise PhantomSpecError(f"{where}.target {name!r}: no ROI of that name")
    if solid.kind not in {ShapeKind.SPHERE, ShapeKind.ELLIPSOID}:
        raise PhantomSpecError(
            f"{where}.target {name!r}: must be a sphere or an ellipsoid"
        )
    return solid


def check_union_disjoint(parts: list[Solid], name: str) -> None:
    """Refuse a union whose parts' bounding boxes overlap (a cheap sufficient test)."""
    boxes = [p.bounds_mm() for p in parts]
    for i, (lo1, hi1) in enumerate(boxes):
        for lo2, hi2 in boxes[i + 1 :]:
            if bool(np.all(lo1 < hi2) and np.all(lo2 < hi1)):
                raise PhantomSpecError(
                    f"unions {name!r}: its ROIs overlap (their boxes intersect)"
                )
