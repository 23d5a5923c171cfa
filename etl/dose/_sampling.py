"""Dose of the grid on the in-plane raster of a structure (private; pure numpy).

The DVH engine takes the dose of each raster cell on every dose plane the structure
spans: bilinear in-plane interpolation of the grid, at the cell centres
(:func:`resample_planes`) or at a point of each cell (:func:`resample_points`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

_BATCH = 65_536  # raster cells resampled at once (arrays that stay in cache)


def axis_weights(
    coord_mm: FloatArray, spacing: float, n: int
) -> tuple[IntArray, IntArray, FloatArray, NDArray[np.bool_]]:
    """Linear-interpolation indices/weights along one grid axis, and inside flags.

    A position is inside within half a spacing of the outer grid points; beyond the
    outer points the dose is continued at constant value.
    """
    g = coord_mm / spacing
    snapped = np.round(g)
    g = np.where(np.abs(g - snapped) < 1e-9, snapped, g)  # noqa: PLR2004
    inside = (g >= -0.5) & (g <= n - 0.5)  # noqa: PLR2004
    g = np.clip(g, 0.0, n - 1.0)
    lo = np.clip(np.floor(g).astype(np.intp), 0, max(n - 2, 0))
    hi = np.minimum(lo + 1, n - 1)
    return lo, hi, g - lo, inside


def resample_planes(
    dose_gy: FloatArray,
    k0: int,
    k1: int,
    rows: tuple[IntArray, IntArray, FloatArray],
    cols: tuple[IntArray, IntArray, FloatArray],
) -> FloatArray:
    """Bilinear in-plane resampling of dose planes ``k0..k1`` onto a raster.

    Returns an array of shape ``(k1 - k0 + 1, n_rows * n_cols)``. A raster on the
    voxel centres of the grid takes the dose values as they are.
    """
    ylo, yhi, fy = rows
    xlo, xhi, fx = cols
    nrows, ncols = len(ylo), len(xlo)
    out = np.empty((k1 - k0 + 1, nrows, ncols))
    if not (np.any(fx) or np.any(fy)):  # on the voxel centres: the values
        flat = (ylo[:, None] * dose_gy.shape[2] + xlo[None, :]).ravel()
        for k in range(k0, k1 + 1):
            np.take(dose_gy[k].ravel(), flat, out=out[k - k0].reshape(-1), mode="clip")
        return out.reshape(k1 - k0 + 1, -1)
    step = max(1, _BATCH // (nrows * ncols))
    for k in range(k0, k1 + 1, step):
        block = dose_gy[k : min(k + step, k1 + 1)]
        dst = out[k - k0 : k - k0 + len(block)]
        wy = fy[None, :, None]
        r = block[:, ylo] * (1.0 - wy) + block[:, yhi] * wy
        dst[...] = r[:, :, xlo] * (1.0 - fx) + r[:, :, xhi] * fx
    return out.reshape(k1 - k0 + 1, -1)


def voxel_planes(
    dose_gy: FloatArray,
    k0: int,
    k1: int,
    rows: tuple[IntArray, IntArray, FloatArray],
    cols: tuple[IntArray, IntArray, FloatArray],
) -> tuple[FloatArray, IntArray, tuple[float, float]] | None:
    """Dose planes ``k0..k1`` for a raster on the voxel centres, without a copy.

    Returns the grid's planes as rows (a read-only view of ``dose_gy``), the index of
    each raster cell's voxel in a row, and the minimum and maximum of the dose of the
    voxels the raster covers: the values :func:`resample_planes` would copy. None when
    the raster is not on consecutive voxel centres.
    """
    ylo, _, fy = rows
    xlo, _, fx = cols
    if np.any(fx) or np.any(fy) or not (_consecutive(ylo) and _consecutive(xlo)):
        return None
    nj, ni = dose_gy.shape[1:]
    block = dose_gy[k0 : k1 + 1]
    planes = block.reshape(k1 - k0 + 1, nj * ni)
    planes.flags.writeable = False
    covered = block[:, ylo[0] : ylo[-1] + 1, xlo[0] : xlo[-1] + 1]
    cells_at = (ylo[:, None] * ni + xlo[None, :]).ravel()
    return planes, cells_at, (float(covered.min()), float(covered.max()))


def _consecutive(idx: IntArray) -> bool:
    """Whether ``idx`` (not empty) steps by 0 or 1: it covers ``idx[0]..idx[-1]``."""
    steps = np.diff(idx)
    return idx.size > 0 and bool(np.all((steps == 0) | (steps == 1)))


def resample_points(
    dose_gy: FloatArray,
    k0: int,
    k1: int,
    u_mm: FloatArray,
    v_mm: FloatArray,
    *,
    spacing: tuple[float, float],
) -> FloatArray:
    """Bilinear in-plane dose of planes ``k0..k1`` at points (grid mm along i and j).

    Returns an array of shape ``(k1 - k0 + 1, len(u_mm))``.
    """
    _, nj, ni = dose_gy.shape
    xlo, xhi, fx, _ = axis_weights(u_mm, spacing[0], ni)
    ylo, yhi, fy, _ = axis_weights(v_mm, spacing[1], nj)
    i00, i01 = ylo * ni + xlo, ylo * ni + xhi
    i10, i11 = yhi * ni + xlo, yhi * ni + xhi
    out = np.empty((k1 - k0 + 1, len(u_mm)))
    low, high, d_low, d_high = np.empty((4, len(u_mm)))
    for k in range(k0, k1 + 1):
        plane = dose_gy[k].ravel()
        # As differences, so that a uniform dose stays exactly uniform (in place):
        # low = p00 + fx (p01 - p00), high = p10 + fx (p11 - p10),
        # out = low + fy (high - low). (The indices are valid: mode "clip" does not
        # check them, nor buffer the output as "raise" does.)
        plane.take(i00, out=low, mode="clip")
        plane.take(i10, out=high, mode="clip")
        np.subtract(plane.take(i01, out=d_low, mode="clip"), low, out=d_low)
        np.subtract(plane.take(i11, out=d_high, mode="clip"), high, out=d_high)
        d_low *= fx
        d_high *= fx
        low += d_low
        high += d_high
        high -= low
        high *= fy
        np.add(low, high, out=out[k - k0])
    return out
