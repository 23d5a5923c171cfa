"""Polygon rasters for the DVH engine (private; pure numpy and scipy).

Every function works on one regular in-plane raster, given by the sample positions
``x`` (columns) and ``y`` (rows) in grid mm, shared by all the planes of a structure.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Largest number of raster cells filled in one vectorised batch of planes.
CHUNK_CELLS = 250_000


#: The loaded feature transform (key "ft"; None: use scipy.ndimage).
_LOADED: dict[str, Callable[..., Any] | None] = {}


def _load_feature_transform() -> Callable[..., Any] | None:
    """SciPy's compiled Euclidean feature transform, without ``scipy.ndimage``.

    Importing ``scipy.ndimage`` costs about 0.2 s (its array-API machinery and
    ``scipy.special``), a fifth of a whole ``rtcohort dvh`` run; the one routine the
    engine needs is in its extension module, loaded here on its own. None when that
    is not possible (another SciPy layout): :func:`distance_edt` then uses
    ``scipy.ndimage.distance_transform_edt``, which it equals (tested).
    """
    try:
        # The top-level spec: finding "scipy.ndimage" would import scipy itself.
        spec = importlib.util.find_spec("scipy")
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations))) / "ndimage"
        path = next(folder.glob("_nd_image*.so"), None) or next(
            folder.glob("_nd_image*.pyd"), None
        )
        if path is None:
            return None
        name = "_rtcohort_scipy_ext._nd_image"  # PyInit__nd_image: keep the last part
        loader = importlib.machinery.ExtensionFileLoader(name, str(path))
        ext_spec = importlib.util.spec_from_file_location(name, path, loader=loader)
        if ext_spec is None:
            return None
        module = importlib.util.module_from_spec(ext_spec)
        loader.exec_module(module)
        return getattr(module, "euclidean_feature_transform", None)
    except (ImportError, OSError, StopIteration):
        return None


def distance_edt(free: BoolArray, sampling: tuple[float, float]) -> FloatArray:
    """Distance (mm) from each sample to the nearest sample where ``free`` is False.

    The same as ``scipy.ndimage.distance_transform_edt(free, sampling=sampling)``.
    """
    if "ft" not in _LOADED:
        _LOADED["ft"] = _load_feature_transform()
    transform = _LOADED["ft"]
    if transform is None:
        return _scipy_fallback(free, sampling)
    nrows, ncols = free.shape
    ft = np.zeros((2, nrows, ncols), dtype=np.int32)
    transform(
        np.ascontiguousarray(free, dtype=bool).view(np.int8),
        np.asarray(sampling, np.float64),
        ft,
    )
    # Offsets to the nearest feature, in mm, squared and summed (as scipy does).
    ft[0] -= np.arange(nrows, dtype=np.int32)[:, None]
    ft[1] -= np.arange(ncols, dtype=np.int32)
    out: FloatArray = np.multiply(ft[0], sampling[0], dtype=np.float64)
    out *= out
    dx = np.multiply(ft[1], sampling[1], dtype=np.float64)
    dx *= dx
    out += dx
    np.sqrt(out, out=out)
    return out


def _scipy_fallback(free: BoolArray, sampling: tuple[float, float]) -> FloatArray:
    from scipy import ndimage

    return np.asarray(ndimage.distance_transform_edt(free, sampling=sampling))


def next_vertex(lengths: list[int]) -> NDArray[np.intp]:
    """Index of the next vertex of each vertex of concatenated closed polygons."""
    nxt = np.arange(1, sum(lengths) + 1)
    ends = np.cumsum(lengths) - 1
    nxt[ends] = ends - np.asarray(lengths) + 1
    return nxt


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
    nxt = pts[next_vertex([len(p) for p in polys])]
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
    # Toggles laid out column-major (column, plane, row), so that the running parity
    # along each row is an accumulation over the outer axis (whole rows at a time).
    flat = (cols * nplanes + plane_of[edge]) * nrows + rows
    toggles = np.bincount(flat, minlength=size).astype(np.uint8)
    toggles &= 1
    parity = toggles.reshape(ncols + 1, nplanes, nrows)[:ncols]
    np.bitwise_xor.accumulate(parity, axis=0, out=parity)
    inside: BoolArray = np.ascontiguousarray(parity.transpose(1, 2, 0)).view(bool)
    return inside


def signed_distances(
    masks: BoolArray, hy: float, hx: float, uncropped: tuple[int, ...] = ()
) -> FloatArray:
    """Signed in-plane distance (mm, negative inside) to the edge of each section.

    Parameters
    ----------
    masks : ndarray of bool, shape (planes, rows, cols)
        Filled sections on one raster.
    hy, hx
        Sample spacing along rows and columns (mm).
    uncropped
        Planes computed over the whole raster (those continued into end caps).

    Returns
    -------
    ndarray of float, same shape
        Distance between sample centres to the nearest edge sample (a sample with a
        4-neighbour on the other side), plus half a sample, negative inside: the zero
        level lies half-way between the last inside and the first outside sample.
        Each plane is computed within the bounding box of its own section and of its
        neighbours' (grown by two samples); beyond it, and on a plane without a
        section, the value is a large positive number.
    """
    nplanes, nrows, ncols = masks.shape
    far = 1e3 * (nrows * hy + ncols * hx + 1.0)
    out = np.full(masks.shape, far)
    rows, cols = _extents(np.any(masks, axis=2)), _extents(np.any(masks, axis=1))
    for p in range(nplanes):
        if rows[p] is None:  # no section
            continue
        if p in uncropped:
            r0, r1, c0, c1 = 0, nrows, 0, ncols
        else:  # the bounding box of this section and its neighbours'
            near_r = [e for e in rows[max(p - 1, 0) : p + 2] if e is not None]
            near_c = [e for e in cols[max(p - 1, 0) : p + 2] if e is not None]
            r0 = max(min(e[0] for e in near_r) - 2, 0)
            r1 = min(max(e[1] for e in near_r) + 3, nrows)
            c0 = max(min(e[0] for e in near_c) - 2, 0)
            c1 = min(max(e[1] for e in near_c) + 3, ncols)
        sub = masks[p, r0:r1, c0:c1]
        free = np.ones(sub.shape, dtype=bool)  # not an edge sample
        d = sub[1:] == sub[:-1]
        free[1:] &= d
        free[:-1] &= d
        d = sub[:, 1:] == sub[:, :-1]
        free[:, 1:] &= d
        free[:, :-1] &= d
        dist = distance_edt(free, (hy, hx))
        dist += 0.5 * min(hx, hy)
        # Negative inside (dist > 0: the sign of 0.5 - sub; faster than a masked
        # negation).
        np.copysign(dist, np.subtract(0.5, sub), out=out[p, r0:r1, c0:c1])
    return out


def _extents(occupied: BoolArray) -> list[tuple[int, int] | None]:
    """First and last index occupied along each row of ``occupied`` (None: none)."""
    n = occupied.shape[1]
    first: list[int] = np.argmax(occupied, axis=1).tolist()
    last: list[int] = (n - 1 - np.argmax(occupied[:, ::-1], axis=1)).tolist()
    some: list[bool] = np.any(occupied, axis=1).tolist()
    return [(f, e) if a else None for f, e, a in zip(first, last, some, strict=True)]
