"""The specification of an analytic phantom (pydantic; pure, no I/O).

A spec is a JSON object (see ``docs/phantoms.md``)::

    {
      "contour_spacing_mm": 1.0,          # distance between planes (= CT slices)
      "contour_plane_origin_mm": null,    # z of one plane; default: half the
                                          # spacing (z = 0 midway between planes)
      "dose_grid_mm": 2.0,                # voxel size; centres at its multiples
      "ct_pixel_mm": 1.0,                 # in-plane pixel size of the CT series
      "contour_tolerance_mm": 1e-4,       # largest polygon-to-surface distance
      "rois": [
        {"name": "PTV", "shape": "sphere", "size_mm": 24,
         "height_mm": null,               # cylinders and cones; default = size_mm
         "offset_mm": [0, 0, 0],          # centre (middle of the axis) in patient mm
         "axis": "z",                     # x|y|z|-x|-y|-z or [X, Y, Z]; cone apex side
         "interpreted_type": "PTV",       # RT ROI Interpreted Type
         "ct_hu": 0}                      # CT number painted inside the ROI
      ],
      "dose": [                           # the dose is the sum of these fields
        {"dose_gy": 16, "at_mm": null,    # dose at a point (default: target centre)
         "gradient": "z",                 # none|x|y|z (signed) or [X, Y, Z]
         "gradient_gy_per_mm": 1.0}
      ],
      "plan": {"target": "PTV", "prescription_gy": null, "fractions": 1, "beams": 2,
               "radiation_type": "PHOTON", "beam_type": "STATIC", "energy_mv": 6}
    }

``prescription_gy`` defaults to the dose at the target centre; ``target`` to the first
ROI of type PTV (else the first ROI).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from etl.phantom.conformal import DoseModel
from etl.phantom.geometry import PhantomSpecError, ShapeKind, Solid, parse_axis
from etl.phantom.spec_dose import (
    BeamFieldSpec,
    ConformalSpec,
    UnionSpec,
    check_union_disjoint,
)
from etl.phantom.truth import LinearDoseField

__all__ = [
    "DoseFieldSpec",
    "PhantomSpec",
    "PlanSpec",
    "RoiInterpretedType",
    "RoiSpec",
    "parse_spec",
    "spec_from_options",
]

AxisValue = str | tuple[float, float, float]
_POSITIVE = {"gt": 0.0, "allow_inf_nan": False}


class RoiInterpretedType(StrEnum):
    """RT ROI Interpreted Type values used by the phantoms (DICOM PS3.3 C.8.8.8)."""

    EXTERNAL = "EXTERNAL"
    PTV = "PTV"
    CTV = "CTV"
    GTV = "GTV"
    ORGAN = "ORGAN"
    AVOIDANCE = "AVOIDANCE"
    CONTROL = "CONTROL"


def _check_axis(value: AxisValue) -> AxisValue:
    parse_axis(value)
    return value


class RoiSpec(BaseModel):
    """One named ROI: an analytic solid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    shape: ShapeKind
    size_mm: float = Field(gt=0.0, allow_inf_nan=False)
    height_mm: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axis: AxisValue = "z"
    interpreted_type: RoiInterpretedType = RoiInterpretedType.ORGAN
    ct_hu: float = Field(default=0.0, ge=-1024.0, le=3000.0)

    _axis = field_validator("axis")(_check_axis)

    def solid(self) -> Solid:
        """Return the solid this ROI stands for."""
        return Solid.make(
            self.shape,
            self.size_mm,
            centre_mm=self.offset_mm,
            axis=self.axis,
            height_mm=self.height_mm,
        )


class DoseFieldSpec(BaseModel):
    """A linear dose field: ``dose_gy`` at ``at_mm`` plus a gradient."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dose_gy: float = Field(allow_inf_nan=False)
    at_mm: tuple[float, float, float] | None = None
    gradient: AxisValue = "none"
    gradient_gy_per_mm: float = Field(default=0.0, allow_inf_nan=False)

    @field_validator("gradient")
    @classmethod
    def _gradient(cls, value: AxisValue) -> AxisValue:
        if isinstance(value, str) and value.strip().lower() == "none":
            return "none"
        return _check_axis(value)

    def field(self, default_at_mm: tuple[float, float, float]) -> LinearDoseField:
        """Return the field, anchored at ``at_mm`` (or ``default_at_mm``)."""
        at = self.at_mm if self.at_mm is not None else default_at_mm
        if self.gradient == "none":
            grad = np.zeros(3)
        else:
            grad = parse_axis(self.gradient) * self.gradient_gy_per_mm
        return LinearDoseField.from_point(self.dose_gy, at, grad)


class PlanSpec(BaseModel):
    """The RT Plan written with the phantom."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str | None = None
    prescription_gy: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    fractions: int = Field(default=1, ge=1, le=100)
    beams: int = Field(default=2, ge=1, le=36)
    radiation_type: Literal["PHOTON", "ELECTRON", "PROTON", "NEUTRON", "ION"] = "PHOTON"
    beam_type: Literal["STATIC", "DYNAMIC"] = "STATIC"
    energy_mv: float = Field(default=6.0, gt=0.0, allow_inf_nan=False)


class PhantomSpec(BaseModel):
    """A whole phantom: ROIs, dose fields, plan and sampling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rois: tuple[RoiSpec, ...] = Field(min_length=1)
    dose: tuple[DoseFieldSpec, ...] = Field(min_length=1)
    conformal: tuple[ConformalSpec, ...] = ()
    beam_fields: tuple[BeamFieldSpec, ...] = ()
    unions: tuple[UnionSpec, ...] = ()
    truth_samples: int = Field(default=32_768, ge=256, le=2**22)
    plan: PlanSpec = PlanSpec()
    contour_spacing_mm: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)
    contour_plane_origin_mm: float | None = Field(default=None, allow_inf_nan=False)
    dose_grid_mm: float = Field(default=2.0, gt=0.0, allow_inf_nan=False)
    ct_pixel_mm: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)
    contour_tolerance_mm: float = Field(default=1e-4, gt=0.0, le=0.1)

    @field_validator("rois")
    @classmethod
    def _unique_names(cls, rois: tuple[RoiSpec, ...]) -> tuple[RoiSpec, ...]:
        names = [r.name for r in rois]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate ROI names: {', '.join(dupes)}")
        return rois

    def roi_names(self) -> list[str]:
        """Names of the ROIs and then the unions, in ROI number order."""
        return [r.name for r in self.rois] + [u.name for u in self.unions]

    def union_parts(self) -> list[list[Solid]]:
        """Return the solids of each union (validated: known names, disjoint boxes)."""
        solids = {r.name: r.solid() for r in self.rois}
        out = []
        for union in self.unions:
            if union.name in solids:
                raise PhantomSpecError(f"unions {union.name!r}: also an ROI name")
            missing = [n for n in union.of if n not in solids]
            if missing:
                raise PhantomSpecError(
                    f"unions {union.name!r}: no ROI named {', '.join(missing)}"
                )
            parts = [solids[n] for n in union.of]
            check_union_disjoint(parts, union.name)
            out.append(parts)
        return out

    def dose_model(self) -> DoseModel:
        """Return the whole dose: the linear field plus conformal and beam parts."""
        solids = {r.name: r.solid() for r in self.rois}
        unions = None
        if any(c.target not in solids for c in self.conformal):
            unions = {
                u.name: parts
                for u, parts in zip(self.unions, self.union_parts(), strict=True)
            }
        return DoseModel(
            self.dose_field(),
            tuple(c.component(solids, unions) for c in self.conformal),
            tuple(b.component(solids) for b in self.beam_fields),
        )

    def target_roi(self) -> RoiSpec:
        """Return the ROI the prescription refers to."""
        if self.plan.target is not None:
            for roi in self.rois:
                if roi.name == self.plan.target:
                    return roi
            raise PhantomSpecError(
                f"plan.target {self.plan.target!r}: no ROI of that name"
            )
        for roi in self.rois:
            if roi.interpreted_type is RoiInterpretedType.PTV:
                return roi
        return self.rois[0]

    def dose_field(self) -> LinearDoseField:
        """Return the total (linear) dose field."""
        anchor = self.target_roi().offset_mm
        total = LinearDoseField(0.0)
        for spec in self.dose:
            total = total + spec.field(anchor)
        return total


def _format_errors(exc: ValidationError) -> str:
    errors = exc.errors()
    # pydantic also reports a too-short tuple when one of its items failed: drop it.
    items = {err["loc"][:1] for err in errors if len(err["loc"]) > 1}
    parts = []
    for err in errors:
        if err["type"] == "too_short" and err["loc"][:1] in items:
            continue
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_spec(data: Mapping[str, Any] | str) -> PhantomSpec:
    """Validate a spec given as a mapping or a JSON string.

    Raises
    ------
    PhantomSpecError
        Naming the field and the reason.
    """
    try:
        if isinstance(data, str):
            return PhantomSpec.model_validate(json.loads(data))
        return PhantomSpec.model_validate(dict(data))
    except json.JSONDecodeError as exc:
        raise PhantomSpecError(f"spec is not valid JSON: {exc}") from None
    except ValidationError as exc:
        raise PhantomSpecError(_format_errors(exc)) from None


def _triple(
    value: str | tuple[float, float, float] | list[float], label: str
) -> list[float]:
    try:
        parts = (
            [float(v) for v in value.split(",")]
            if isinstance(value, str)
            else [float(v) for v in value]
        )
    except ValueError:
        parts = []
    if len(parts) != len("xyz") or not all(np.isfinite(parts)):
        raise PhantomSpecError(f"{label} {value!r}: expected three numbers X,Y,Z")
    return parts


def spec_from_options(
    shape: str,
    size_mm: float,
    *,
    offset_mm: str | tuple[float, float, float] = (0.0, 0.0, 0.0),
    axis: AxisValue = "z",
    height_mm: float | None = None,
    contour_spacing_mm: float = 1.0,
    dose_grid_mm: float = 2.0,
    dose_gy: float = 16.0,
    gradient: str = "none",
    gradient_gy_per_mm: float = 1.0,
    name: str | None = None,
) -> PhantomSpec:
    """Build the spec of a one-shape phantom (the ``rtcohort phantom`` options).

    The dose is ``dose_gy`` at the shape centre, plus ``gradient_gy_per_mm`` along
    ``gradient`` (``none``, ``x``, ``y``, ``z`` or a direction ``X,Y,Z``).

    Examples
    --------
    >>> spec = spec_from_options("sphere", 24, gradient="z")
    >>> spec.rois[0].name, spec.dose_field().gradient_gy_per_mm
    ('sphere_24mm', (0.0, 0.0, 1.0))
    """
    offset = _triple(offset_mm, "offset_mm")
    grad: str | list[float] = gradient
    if gradient.strip().lower() not in {"none", "x", "y", "z", "-x", "-y", "-z"}:
        grad = _triple(gradient, "gradient")
    roi_name = name or f"{str(shape).lower()}_{size_mm:g}mm"
    return parse_spec(
        {
            "rois": [
                {
                    "name": roi_name,
                    "shape": str(shape).lower(),
                    "size_mm": size_mm,
                    "height_mm": height_mm,
                    "offset_mm": offset,
                    "axis": axis,
                    "interpreted_type": "PTV",
                }
            ],
            "dose": [
                {
                    "dose_gy": dose_gy,
                    "at_mm": offset,
                    "gradient": grad,
                    "gradient_gy_per_mm": gradient_gy_per_mm,
                }
            ],
            "contour_spacing_mm": contour_spacing_mm,
            "dose_grid_mm": dose_grid_mm,
        }
    )
