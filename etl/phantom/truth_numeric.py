"""Numerical DVH truth of solids in any smooth dose field (pure numpy/scipy).

A conformal dose (:mod:`etl.phantom.conformal`) has no closed-form DVH, so its truth is
computed by randomised quasi-Monte Carlo (RQMC) on the analytic solid and the analytic
dose function, with a stated error:

1. ``replicates`` independent Owen-scrambled Sobol' sequences of ``samples`` points
   in the unit cube (``scipy.stats.qmc.Sobol``, seeded) are mapped to the solid by a
   volume-preserving map (ball: radius ``u**(1/3)``, uniform direction; cylinder:
   radius ``R sqrt(u)``, uniform height; cone: distance from the apex
   ``h u**(1/3)``), so every point is uniform in the solid and carries the weight
   ``volume / samples``.
   A union of disjoint solids (``Lungs``) pools its parts' points, each part weighted by
   its exact volume.
2. The dose is evaluated exactly at each point. ``V(D)`` is the weighted count of points
   with dose >= D, ``Dmean`` the weighted mean, ``Dx%`` and ``Dxcc`` the weighted
   quantiles; each is computed per replicate and averaged.
3. The uncertainty is three standard errors across the replicates (independent and
   unbiased, so this bounds the error with about 99 % confidence for
   ``replicates >= 8``; conservative rather than strict). For smooth doses the RQMC
   error of ``V(D)`` falls like ``N**-(2/3)`` or faster, faster than plain Monte
   Carlo; at the defaults (8 x 32,768 points) the DVH volume error is below 0.05 % of
   the volume for the organs of the site phantoms.

``Min`` and ``Max`` are the extremes of the points: ``Min`` is over- and ``Max``
under-estimated by at most the dose change over the gap between points (about
``(V / N) ** (1/3)`` mm times the gradient). The tests check the method against the
exact truth of linear fields and of a sphere in a radial field (the lens of two balls).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.stats import qmc

from etl.phantom.geometry import ShapeKind, Solid
from etl.phantom.truth import DEFAULT_METRICS, RoiTruth

__all__ = [
    "DEFAULT_REPLICATES",
    "DEFAULT_SAMPLES",
    "numeric_roi_truth",
    "sample_doses",
    "sample_solid",
]

FloatArray = NDArray[np.float64]
DoseFunction = Callable[[FloatArray], FloatArray]

DEFAULT_SAMPLES = 32_768
DEFAULT_REPLICATES = 8
_PERCENTS = {"D99%[Gy]": 99.0, "D95%[Gy]": 95.0, "D5%[Gy]": 5.0, "D1%[Gy]": 1.0}


def _frame(axis: tuple[float, float, float]) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(axis, dtype=np.float64)
    helper = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])  # noqa: PLR2004
    e1 = np.cross(a, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(a, e1)


def sample_solid(solid: Solid, unit: FloatArray) -> FloatArray:
    """Map points of the unit cube (shape (n, 3)) uniformly into ``solid``.

    Examples
    --------
    >>> pts = sample_solid(Solid.make("cylinder", 10.0), np.random.default_rng(0).random((1000, 3)))
    >>> bool(Solid.make("cylinder", 10.0).contains(pts).all())
    True
    """  # noqa: E501
    u1, u2, u3 = unit[:, 0], unit[:, 1], unit[:, 2]
    phi = 2.0 * math.pi * u3
    r = solid.radius_mm
    half = solid.height_mm / 2.0
    if solid.kind in {ShapeKind.SPHERE, ShapeKind.ELLIPSOID}:
        w = np.cbrt(u1)
        cos_t = 1.0 - 2.0 * u2
        sin_t = np.sqrt(np.clip(1.0 - cos_t * cos_t, 0.0, None))
        s = half * w * cos_t
        rho = r * w * sin_t
    elif solid.kind is ShapeKind.CYLINDER:
        s = (u1 - 0.5) * solid.height_mm
        rho = r * np.sqrt(u2)
    else:
        f = np.cbrt(u1)  # distance from the apex, as a fraction of the height
        s = half - f * solid.height_mm
        rho = r * f * np.sqrt(u2)
    e1, e2 = _frame(solid.axis)
    a = np.asarray(solid.axis)
    local = (
        s[:, None] * a
        + (rho * np.cos(phi))[:, None] * e1
        + (rho * np.sin(phi))[:, None] * e2
    )
    return np.asarray(local + np.asarray(solid.centre_mm))


def _weighted_quantile_dose(
    dose: FloatArray, weight: FloatArray, volume_mm3: float
) -> Callable[[float], float | None]:
    order = np.argsort(dose)[::-1]
    sorted_dose = dose[order]
    cum = np.cumsum(weight[order])  # volume receiving at least sorted_dose[i]

    def at_volume(target_mm3: float) -> float | None:
        if target_mm3 > volume_mm3 * (1.0 + 1e-12):
            return None
        i = int(np.searchsorted(cum, target_mm3, side="left"))
        return float(sorted_dose[min(i, len(sorted_dose) - 1)])

    return at_volume


def sample_doses(
    parts: Sequence[Solid], dose_fn: DoseFunction, samples: int, seed: int
) -> tuple[FloatArray, FloatArray]:
    """One RQMC replicate: doses (Gy) at uniform points and their volumes (mm3)."""
    doses, weights = [], []
    for k, solid in enumerate(parts):
        sobol = qmc.Sobol(d=3, scramble=True, seed=np.random.default_rng([seed, k]))
        unit = sobol.random(samples)
        doses.append(np.asarray(dose_fn(sample_solid(solid, unit)), dtype=np.float64))
        weights.append(np.full(samples, solid.volume_mm3() / samples))
    return np.concatenate(doses), np.concatenate(weights)


def _volume_at_least(
    dose: FloatArray, weight: FloatArray, axis: FloatArray
) -> FloatArray:
    order = np.argsort(dose)
    suffix = np.concatenate([np.cumsum(weight[order][::-1])[::-1], [0.0]])
    return np.asarray(suffix[np.searchsorted(dose[order], axis, side="left")])


def _metrics(
    dose: FloatArray, weight: FloatArray, volume_mm3: float
) -> dict[str, float | None]:
    at_volume = _weighted_quantile_dose(dose, weight, volume_mm3)
    out: dict[str, float | None] = {
        "Mean[Gy]": float(np.sum(dose * weight) / np.sum(weight)),
        "Min[Gy]": float(dose.min()),
        "Max[Gy]": float(dose.max()),
    }
    for name, pct in _PERCENTS.items():
        out[name] = at_volume(volume_mm3 * pct / 100.0)
    out["D0.03cc[Gy]"] = at_volume(30.0)
    return out


def numeric_roi_truth(
    parts: Sequence[Solid],
    dose_fn: DoseFunction,
    *,
    samples: int = DEFAULT_SAMPLES,
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
    max_points: int = 1001,
) -> RoiTruth:
    """RQMC truth of a solid (or a union of disjoint solids) in any dose function.

    Parameters
    ----------
    parts
        The solid, or the disjoint solids of a union.
    dose_fn
        Dose (Gy) at points of shape (n, 3).
    samples
        Points per part and replicate (a power of two keeps Sobol' balanced).
    replicates
        Independent scramblings; the spread gives the uncertainty.
    seed
        Seed of the scramblings (the truth is reproducible).
    max_points
        Points of the tabulated cumulative DVH.

    Returns
    -------
    RoiTruth
        ``method='rqmc'``, with ``uncertainty`` (three standard errors).
    """
    volume_mm3 = float(sum(p.volume_mm3() for p in parts))
    runs = [
        sample_doses(parts, dose_fn, samples, seed * 1000 + k)
        for k in range(replicates)
    ]
    per_run = [_metrics(d, w, volume_mm3) for d, w in runs]
    all_dose = np.concatenate([d for d, _ in runs])
    dmin, dmax = float(all_dose.min()), float(all_dose.max())
    metrics: dict[str, float | None] = {}
    uncertainty: dict[str, float] = {}
    for name in DEFAULT_METRICS:
        if name in {"Min[Gy]", "Max[Gy]"}:
            continue
        values = [m[name] for m in per_run]
        if any(v is None for v in values):
            metrics[name] = None
            continue
        arr = np.asarray(values, dtype=np.float64)
        metrics[name] = float(arr.mean())
        uncertainty[name] = float(3.0 * arr.std(ddof=1) / math.sqrt(len(arr)))
    metrics = {"Min[Gy]": dmin, "Max[Gy]": dmax, **metrics}
    n = max(2, min(max_points, 1001))
    axis = np.linspace(dmin, dmax, n) if dmax > dmin else np.array([0.0, dmin])
    curves = np.array([_volume_at_least(d, w, axis) for d, w in runs])
    volumes = curves.mean(axis=0)
    volumes[0] = volume_mm3
    uncertainty["dvh_volume_cc"] = float(
        3.0 * np.max(curves.std(axis=0, ddof=1)) / math.sqrt(replicates) / 1000.0
    )
    return RoiTruth(
        volume_cc=volume_mm3 / 1000.0,
        min_gy=dmin,
        mean_gy=float(metrics["Mean[Gy]"] or 0.0),
        max_gy=dmax,
        metrics=metrics,
        dvh_dose_gy=tuple(float(x) for x in axis),
        dvh_volume_cc=tuple(float(v) / 1000.0 for v in volumes),
        method="rqmc",
        uncertainty=uncertainty,
    )
