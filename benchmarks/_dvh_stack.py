"""Exact DVH of a contour stack (slabs with half-spacing end caps), for the benchmarks.

Used by ``dvh_accuracy.py`` as its second reference ("vs stack"): it separates the
engine's own error from the error of representing a solid by contours.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize


def _clip_area(poly: np.ndarray, normal: np.ndarray, t: float) -> float:
    """Area of the part of a 2-D polygon where ``normal . p >= t`` (vectorised clip)."""
    f = poly @ normal - t
    nxt = np.roll(np.arange(len(poly)), -1)
    inside = f >= 0
    cross = (f > 0) != (f[nxt] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(cross, f / (f - f[nxt]), 0.0)
    hit = poly + w[:, None] * (poly[nxt] - poly)
    pts = np.stack([poly, hit], axis=1).reshape(-1, 2)
    keep = np.stack([inside, cross & (f != 0)], axis=1).reshape(-1)
    q = pts[keep]
    if len(q) < 3:
        return 0.0
    x, y = q[:, 0], q[:, 1]
    return 0.5 * abs(float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)))


def stack_truth(
    contours: list[np.ndarray], spacing: float, constant: float, gradient: np.ndarray
) -> dict[str, float | None]:
    """Exact metrics of the contour stack (slabs with half-spacing end caps).

    Only for a gradient along z or in the x-y plane (the benchmark's). This separates
    the error of the engine from the error of representing the solid by contours.
    """
    zs = np.array([c[0, 2] for c in contours])
    polys = [c[:, :2] for c in contours]
    areas = np.zeros(len(polys))
    cent = np.zeros((len(polys), 2))
    for k, p in enumerate(polys):
        x, y = p[:, 0], p[:, 1]
        cr = x * np.roll(y, -1) - np.roll(x, -1) * y
        a = 0.5 * cr.sum()
        areas[k] = abs(a)
        cent[k] = [
            ((x + np.roll(x, -1)) * cr).sum() / (6 * a),
            ((y + np.roll(y, -1)) * cr).sum() / (6 * a),
        ]
    gxy, gz = gradient[:2], float(gradient[2])
    total = float(areas.sum() * spacing)
    mean = float((areas * (constant + cent @ gxy + gz * zs)).sum() * spacing / total)
    if np.any(gxy != 0) and gz != 0:
        raise ValueError("stack truth handles gradients along z or in-plane only")
    if gz != 0:
        lo_z, hi_z = zs.min() - spacing / 2, zs.max() + spacing / 2
        dmin, dmax = sorted((constant + gz * lo_z, constant + gz * hi_z))

        def volume(d: float) -> float:
            z_cut = (d - constant) / gz
            if gz > 0:
                length = np.clip(zs + spacing / 2 - z_cut, 0, spacing)
            else:
                length = np.clip(z_cut - (zs - spacing / 2), 0, spacing)
            return float((areas * length).sum())
    else:
        norm = float(np.linalg.norm(gxy))
        proj = [p @ (gxy / norm) for p in polys]
        dmin = constant + norm * min(float(v.min()) for v in proj)
        dmax = constant + norm * max(float(v.max()) for v in proj)

        def volume(d: float) -> float:
            t = (d - constant) / norm
            return spacing * sum(_clip_area(p, gxy / norm, t) for p in polys)

    out: dict[str, float | None] = {
        "volume": total / 1000.0,
        "Mean[Gy]": mean,
        "Min[Gy]": dmin,
        "Max[Gy]": dmax,
    }
    targets = {"D99%[Gy]": 0.99 * total, "D95%[Gy]": 0.95 * total}
    targets |= {"D5%[Gy]": 0.05 * total, "D1%[Gy]": 0.01 * total, "D0.03cc[Gy]": 30.0}
    for name, v in targets.items():
        out[name] = optimize.brentq(lambda d, v=v: volume(d) - v, dmin, dmax, xtol=1e-9)
    return out
