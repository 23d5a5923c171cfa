"""Polygon rasters for the DVH engine (private; pure numpy and scipy).

Every function works on one regular in-plane raster, given by the sample positions
``x`` (columns) and ``y`` (rows) in grid mm, shared by all the planes of a structure.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Largest number of raster cells filled in one vectorised batch of planes.
CHUNK_CELLS = 250_000


def fill_planes(
    planes: list[list[FloatArray]], x: FloatArray, y: FloatArray
) -> BoolArray:
    """Even-odd fill of the polygons of several planes at once.

    Parameters
    ----------
    planes
        One list of 2-D polygons (``(N, 2)`` arrays, grid mm) per plane.
    x, y
        Increasing sample positions of the raster columns and rows.

    Returns
    -------
    ndarray of bool, shape (len(planes), len(y), len(x))
        Whether each sample lies inside (an odd number of crossings to its left).
    """
    nplanes, nrows, ncols = len(planes), len(y), len(x)
    if nplanes == 0:
        return np.zeros((0, nrows, ncols), dtype=bool)
    polys = [p for ps in planes for p in ps]
    plane_of = np.repeat(np.arange(nplanes), [sum(len(p) for p in ps) for ps in planes])
    pts = np.concatenate(polys)
    nxt = np.concatenate([np.roll(p, -1, axis=0) for p in polys])
    x0, y0, x1, y1 = pts[:, 0], pts[:, 1], nxt[:, 0], nxt[:, 1]
    # An edge toggles the rows whose centre lies in [min(y0, y1), max(y0, y1)).
    r0 = np.searchsorted(y, np.minimum(y0, y1), side="left")
    r1 = np.searchsorted(y, np.maximum(y0, y1), side="left")
    counts = r1 - r0
    keep = np.nonzero(counts > 0)[0]
    counts = counts[keep]
    size = nplanes * nrows * (ncols + 1)
    if counts.size == 0:
        return np.zeros((nplanes, nrows, ncols), dtype=bool)
    edge = np.repeat(keep, counts)
    starts = np.repeat(r0[keep] - np.cumsum(counts) + counts, counts)
    rows = np.arange(len(edge)) + starts
    t = (y[rows] - y0[edge]) / (y1[edge] - y0[edge])
    xc = x0[edge] + t * (x1[edge] - x0[edge])
    cols = np.searchsorted(x, xc, side="right")
    flat = (plane_of[edge] * nrows + rows) * (ncols + 1) + cols
    toggles = np.bincount(flat, minlength=size).astype(np.uint8)
    toggles = toggles.reshape(nplanes, nrows, ncols + 1)[:, :, :ncols]
    parity: NDArray[np.uint8] = np.bitwise_xor.accumulate(toggles & 1, axis=2)
    return parity.astype(bool)


def signed_distance(
    mask: BoolArray, hy: float, hx: float, box: tuple[int, int, int, int]
) -> NDArray[np.float32]:
    """Signed in-plane distance (mm, negative inside) to the edge of a filled section.

    Distances are measured between sample centres (Euclidean distance transform) and
    moved by half a sample so that the zero level lies between the last inside and the
    first outside sample. Only the samples of ``box`` (row and column ranges
    ``r0:r1, c0:c1``, which must hold the section and a margin of outside samples) are
    computed; the others are ``+inf`` (outside, far).
    """
    r0, r1, c0, c1 = box
    out = np.full(mask.shape, np.inf, dtype=np.float32)
    sub = mask[r0:r1, c0:c1]
    if not sub.any():
        return out
    inside = ndimage.distance_transform_edt(sub, sampling=(hy, hx))
    outside = ndimage.distance_transform_edt(~sub, sampling=(hy, hx))
    half = 0.5 * min(hx, hy)
    out[r0:r1, c0:c1] = outside - inside + np.where(sub, half, -half)
    return out


def bounding_box(masks: BoolArray, pad: int = 2) -> tuple[int, int, int, int] | None:
    """Row and column ranges holding every ``True`` of ``masks`` (any leading axes).

    The ranges are grown by ``pad`` samples and clipped to the raster; ``None`` when
    nothing is set.
    """
    flat_r = masks.reshape(-1, *masks.shape[-2:]).any(axis=(0, 2))
    flat_c = masks.reshape(-1, *masks.shape[-2:]).any(axis=(0, 1))
    rows, cols = np.nonzero(flat_r)[0], np.nonzero(flat_c)[0]
    if rows.size == 0:
        return None
    nr, nc = masks.shape[-2:]
    return (
        max(int(rows[0]) - pad, 0),
        min(int(rows[-1]) + pad + 1, nr),
        max(int(cols[0]) - pad, 0),
        min(int(cols[-1]) + pad + 1, nc),
    )
