"""The reference values of ``benchmarks/real_plan.py``, computed with numpy alone.

From a stored ``dvh`` row: the differential DVH (zlib, little-endian float64 per
bin of ``bin_width_gy``), the cumulative curve's nodes (the exact minimum, the bin
edges strictly between, the exact maximum; volume % of the in-grid volume, linear
between nodes), EQD2 = D (d + a/b) / (2 + a/b) with d = D / n. Neither the
platform's samplers nor its metric engine are used.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
AB = 3.0  # alpha/beta of the stored EQD2 samples and the dashboards' default
STEP = 1.0


class CheckFailedError(Exception):
    """A check of the real plan failed (the message says which and by how much)."""


def differential(row: Any) -> FloatArray:
    """The stored differential DVH of a ``dvh`` row (cc per bin)."""
    return np.frombuffer(zlib.decompress(row.differential_cc), dtype="<f8").copy()


def nodes(row: Any) -> tuple[FloatArray, FloatArray, float]:
    """Cumulative nodes (dose Gy, volume %) of a stored DVH and its in-grid cc."""
    diff = differential(row)
    total = float(diff.sum())
    w = float(row.bin_width_gy)
    lo, hi = float(row.min_gy), float(row.max_gy)
    edges = np.arange(len(diff) + 1) * w
    tail = np.append(np.cumsum(diff[::-1])[::-1], 0.0)
    inner = (edges > lo) & (edges < hi)
    dose = np.concatenate(([lo], edges[inner], [hi]))
    vol = np.concatenate(([total], tail[inner], [0.0])) / total * 100.0
    return dose, vol, total


def eqd2(d: FloatArray | float, n: int, ab: float = AB) -> Any:
    """EQD2 of a total dose ``d`` in ``n`` fractions."""
    return d * (d / n + ab) / (2.0 + ab)


def resample(dose: FloatArray, vol: FloatArray, count: int) -> FloatArray:
    """Volume % at 0, 1, 2, ... Gy (100 below the first node, 0 past the last)."""
    grid = np.arange(count) * STEP
    return np.asarray(np.interp(grid, dose, vol, left=100.0, right=0.0), dtype=float)


def dose_at(dose: FloatArray, vol: FloatArray, v: float) -> float:
    """Largest dose still receiving at least ``v`` % (linear between nodes)."""
    best = float(dose[0])
    for i in range(len(dose) - 1):
        v0, v1 = vol[i], vol[i + 1]
        if v0 >= v >= v1:
            d = (
                dose[i + 1]
                if v0 == v1
                else dose[i] + (v0 - v) / (v0 - v1) * (dose[i + 1] - dose[i])
            )
            best = max(best, float(d))
    return best


def reference_metric(
    row: Any, metric: str, fractions: int | None, ab: float = AB
) -> float | None:
    """A stored metric recomputed from the DVH row (EQD2 when ``fractions``)."""
    dose, vol, total = nodes(row)
    mapped = dose if fractions is None else eqd2(dose, fractions, ab)
    if metric == "Volume[cc]":
        return float(row.volume_cc)
    if metric == "Mean[Gy]":
        if fractions is None:
            return float(row.mean_gy)
        return eqd2_mean(row, fractions, ab)
    if metric == "Min[Gy]":
        return float(mapped[0])
    if metric == "Max[Gy]":
        return float(mapped[-1])
    m = re.fullmatch(r"D([\d.]+)(%|cc)\[Gy\]", metric)
    if m:
        v = float(m.group(1)) if m.group(2) == "%" else float(m.group(1)) / total * 100
        return None if v > 100.0 else dose_at(mapped, vol, v)
    m = re.fullmatch(r"V([\d.]+)Gy\[%\]", metric)
    if m:
        x = float(m.group(1))
        return 100.0 if x <= mapped[0] else float(np.interp(x, mapped, vol, right=0.0))
    raise CheckFailedError(f"no reference for metric {metric!r}")


def eqd2_mean(row: Any, n: int, ab: float = AB) -> float:
    """Mean EQD2, dose uniform within each bin (clipped to the exact min and max)."""
    diff = differential(row)
    w = float(row.bin_width_gy)
    lo = np.maximum(np.arange(len(diff)) * w, float(row.min_gy))
    hi = np.minimum((np.arange(len(diff)) + 1) * w, float(row.max_gy))
    hi = np.maximum(hi, lo)
    width = np.where(hi > lo, hi - lo, 1.0)
    integral = ((hi**3 - lo**3) / (3 * n) + ab * (hi**2 - lo**2) / 2) / (2 + ab)
    mean_bin = np.where(hi > lo, integral / width, eqd2(lo, n, ab))
    return float((diff * mean_bin).sum() / diff.sum())
