"""Shape-based interpolation of sections between contour planes (private).

Between two planes the signed in-plane distance to each section (negative inside) is
blended: the structure is where the blend is negative, so along a raster column it is
one interval per gap, solved exactly. The blend is linear in ``z`` between ordinary
planes; towards a tip (a degenerate end section, or the point where a pointed end
narrows to) it is linear in ``w = 1 - u ** alpha``, ``u`` the distance to the tip as a
fraction of the gap, so that a round section narrows as ``r ~ u ** alpha`` (see
:mod:`etl.dose._planes`). A degenerate section (no raster sample inside: a tiny
polygon, a line, a point) contributes the distance to its vertices and edges.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from etl.dose._columns import ColumnHistogram
from etl.dose._planes import End, Run, section_areas
from etl.dose._raster import (
    CHUNK_CELLS,
    fill_planes,
    next_vertex,
    signed_distances,
)

FloatArray = NDArray[np.float64]

_MAX_TIP_VERTICES = 32  # a degenerate section's distance uses at most this many
_PROFILE_SAMPLES = 257  # samples of a narrowing end's area profile
_MAX_BULGE = 0.25  # a bulge adds at most this fraction of the section, or spacing


def linear_inside(
    z_start: float | FloatArray,
    z_end: float | FloatArray,
    f_start: NDArray[np.floating[Any]],
    f_end: NDArray[np.floating[Any]],
) -> tuple[FloatArray, FloatArray]:
    """Where ``f``, linear from ``f_start`` to ``f_end``, is negative: ``[za, zb]``.

    Empty intervals come back with ``zb <= za``.
    """
    f0 = f_start.astype(np.float64)
    f1 = f_end.astype(np.float64)
    neg0, neg1 = f0 < 0, f1 < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        zc = z_start + f0 / (f0 - f1) * (z_end - z_start)
    za: FloatArray = np.where(neg0, z_start, zc)
    zb: FloatArray = np.where(neg1, z_end, zc)
    none = ~(neg0 | neg1)
    za[none] = 0.0
    zb[none] = 0.0
    return za, zb


def tip_distances(polys: list[FloatArray], x: FloatArray, y: FloatArray) -> FloatArray:
    """Distance (mm) from each raster sample to the vertices and edges of polygons.

    For a degenerate section (near-zero area, a line, a point) that no raster sample
    falls in: its signed distance, zero on the section. Returns shape
    ``(len(y) * len(x),)``.
    """
    px = np.tile(x, len(y))
    py = np.repeat(y, len(x))
    best = np.full(px.shape, np.inf)
    for poly in polys:
        step = max(1, int(np.ceil(len(poly) / _MAX_TIP_VERTICES)))
        p = poly[::step]
        q = np.roll(p, -1, axis=0)
        for (ax, ay), (bx, by) in zip(p, q, strict=True):
            ex, ey = bx - ax, by - ay
            ee = ex * ex + ey * ey
            if ee > 0:
                t = np.clip(((px - ax) * ex + (py - ay) * ey) / ee, 0.0, 1.0)
            else:
                t = np.zeros(1)
            np.minimum(best, np.hypot(px - ax - t * ex, py - ay - t * ey), out=best)
    return best


def _warped_inside(
    end: End, z_tip: float, f_from: FloatArray, f_tip: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Inside interval of columns between a section (``end.z_from``) and a tip.

    The blend of ``f_from`` and ``f_tip`` is linear in ``w = 1 - sqrt(A(z) / A0)``,
    ``A`` the end's area profile and ``A0`` its value where the narrowing starts: a
    round section narrows with the area trend. Returns ``[lo, hi]`` in z.
    """
    coef = np.asarray(end.area)
    zs = np.linspace(end.z_from, z_tip, _PROFILE_SAMPLES)
    area = np.clip(np.polyval(coef, zs), 0.0, None)
    a0 = max(float(area[0]), 1e-12)
    w = 1.0 - np.sqrt(np.minimum.accumulate(area) / a0)
    w[-1] = 1.0  # the tip
    w = np.maximum.accumulate(w)
    wa, wb = linear_inside(0.0, 1.0, f_from, f_tip)
    za = np.interp(wa, w, zs)
    zb = np.interp(wb, w, zs)
    empty = ~(wb > wa)
    lo, hi = np.minimum(za, zb), np.maximum(za, zb)
    lo[empty] = 0.0
    hi[empty] = 0.0
    return lo, hi


def _flat_cap(
    acc: ColumnHistogram,
    end: End,
    z_inner: float,
    f_plane: FloatArray,
    f_inner: FloatArray,
) -> None:
    """Add a flat cap: the change between the outer planes continues beyond them."""
    t = abs(end.z - end.z_outer) / abs(z_inner - end.z_outer)
    f_cap = f_plane + t * (f_plane - f_inner)
    cells = np.flatnonzero((f_plane < 0) | (f_cap < 0))
    lo, hi = min(end.z, end.z_outer), max(end.z, end.z_outer)
    if end.z < end.z_outer:
        za, zb = linear_inside(lo, hi, f_cap[cells], f_plane[cells])
    else:
        za, zb = linear_inside(lo, hi, f_plane[cells], f_cap[cells])
    acc.add(cells, za, zb)


def _pointed_cap(acc: ColumnHistogram, end: End, f_plane: FloatArray) -> None:
    """Add a pointed cap: the outer section shrinks (eroded) to its deepest point."""
    if end.area is None:
        return
    cells = np.flatnonzero(f_plane < 0)
    if cells.size == 0:
        return
    f = f_plane[cells]
    depth = -float(f.min())
    za, zb = _warped_inside(end, end.z, f, f + depth)
    acc.add(cells, za, zb)


def _perimeters(groups: list[list[FloatArray]]) -> FloatArray:
    """Total perimeter (mm) of each plane's polygons (edge lengths at once)."""
    sizes = [len(p) for ps in groups for p in ps]
    pts = np.concatenate([p for ps in groups for p in ps])
    edges = pts[next_vertex(sizes)] - pts
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    ends = np.cumsum(sizes).tolist()
    per_poly = iter(
        [float(np.sum(lengths[e - n : e])) for n, e in zip(sizes, ends, strict=True)]
    )
    return np.array([sum(next(per_poly) for _ in ps) for ps in groups])


def polyfit(x: FloatArray, y: FloatArray, deg: int) -> FloatArray:
    """``np.polyfit(x, y, deg)`` (the same arithmetic), without its checks.

    For a few points of distinct ``x``, many times: the checks cost more than the fit.
    """
    lhs = np.vander(x, deg + 1)
    scale = np.sqrt((lhs * lhs).sum(axis=0))
    lhs /= scale
    coef = np.linalg.lstsq(lhs, y, rcond=len(x) * np.finfo(np.float64).eps)[0]
    out: FloatArray = coef / scale
    return out


def _horner(coef: FloatArray, x: float) -> float:
    """``np.polyval(coef, x)`` at one point (the same operations, in floats)."""
    value = 0.0
    for c in coef.tolist():
        value = value * x + c
    return value


def _bulges(
    areas: FloatArray, lengths: FloatArray, linear: NDArray[np.bool_]
) -> FloatArray:
    """Outward offset (mm) at mid-gap that gives each gap its curved area trend.

    The linear blend of two sections is a ruled surface (a frustum between two
    circles, of mid-gap area ``((sqrt(A0) + sqrt(A1)) / 2) ** 2``): it cuts the
    curvature of a round solid. The area at mid-gap is taken from a polynomial
    through the areas of the four planes around the gap (exact for a sphere, an
    ellipsoid or a cone), and the blend is offset outwards by ``4 c t (1 - t)`` (``t``
    the position in the gap), ``c`` the missing area over the mean perimeter. Only
    bulges are added (a waist keeps the linear blend).
    """
    n = len(areas)
    out = np.zeros(n - 1)
    t = np.arange(n, dtype=np.float64)
    roots = np.sqrt(areas)
    for g in np.flatnonzero(linear).tolist():
        idx = np.arange(max(g - 1, 0), min(g + 3, n))
        if len(idx) < 3:  # noqa: PLR2004
            continue
        want = _horner(polyfit(t[idx], areas[idx], min(len(idx) - 1, 3)), g + 0.5)
        missing = want - ((roots[g] + roots[g + 1]) / 2) ** 2
        mean = (areas[g] + areas[g + 1]) / 2
        if missing > 0 and mean > 0:
            missing = min(missing, _MAX_BULGE * mean)
            out[g] = missing / max((lengths[g] + lengths[g + 1]) / 2, 1e-9)
    return out


def _add_bulged(
    acc: ColumnHistogram, f0: FloatArray, f1: FloatArray, c: float, zg: FloatArray
) -> None:
    """Add the partly inside columns of a gap whose blend bulges by ``c`` mid-gap.

    Inside where ``f0 + t (f1 - f0) - 4 c t (1 - t) < 0``, ``t`` in ``[0, 1]``.
    """
    z0, z1 = float(zg[0]), float(zg[1])
    c = min(c, _MAX_BULGE * abs(z1 - z0))
    # Not inside both planes, and within c of one (distances are never NaN).
    cells = np.flatnonzero((np.maximum(f0, f1) >= 0) & (np.minimum(f0, f1) < c))
    a0, a1 = f0[cells], f1[cells]
    qa, qb = 4.0 * c, a1 - a0 - 4.0 * c
    disc = qb * qb - 4.0 * qa * a0
    ok = disc > 0
    root = np.sqrt(np.where(ok, disc, 0.0))
    ta = np.clip((-qb - root) / (2.0 * qa), 0.0, 1.0)
    tb = np.clip((-qb + root) / (2.0 * qa), 0.0, 1.0)
    ok &= tb > ta
    acc.add(cells[ok], z0 + ta[ok] * (z1 - z0), z0 + tb[ok] * (z1 - z0))


def add_interpolated(
    acc: ColumnHistogram,
    groups: list[list[FloatArray]],
    positions: FloatArray,
    run: Run,
    raster: tuple[FloatArray, FloatArray],
) -> None:
    """Add a run of planes whose sections are interpolated between the planes."""
    a, b = run.first, run.last
    x, y = raster
    h = (float(y[1] - y[0]), float(x[1] - x[0]))
    ncell = len(x) * len(y)
    per_batch = max(3, CHUNK_CELLS // ncell)
    z = positions[a : b + 1]
    n = b - a  # gaps
    # (gap, end, tip plane, plane it narrows from), planes counted within the run
    tips = [(0, run.start, 0, 1)] if run.start.tip else []
    tips += [(n - 1, run.end, n, n - 1)] if run.end.tip else []
    tip_gaps = {t[0] for t in tips}
    flat = [
        (end, outer, inner)
        for end, outer, inner in ((run.start, 0, 1), (run.end, n, n - 1))
        if end.area is None and end.z != end.z_outer
    ]
    whole = {q for _, o, i in flat for q in (o, i)}
    areas = section_areas(groups[a : b + 1])
    lengths = _perimeters(groups[a : b + 1])
    # Batches of planes overlapping by one, so that every gap has both its planes.
    for s in range(0, n, per_batch - 1):
        e = min(s + per_batch, n + 1)
        masks = fill_planes(groups[a + s : a + e], x, y)
        caps = tuple(q - s for q in whole if s <= q < e)
        sdf = signed_distances(masks, *h, uncropped=caps).reshape(e - s, ncell)
        inside = masks.reshape(e - s, ncell)
        for p in np.flatnonzero(~inside.any(axis=1)):
            sdf[p] = tip_distances(groups[a + s + int(p)], x, y)
        linear = np.array([s + g not in tip_gaps for g in range(e - s - 1)])
        both = inside[:-1] & inside[1:] & linear[:, None]  # no clipping: by gaps
        acc.add_runs(
            np.flatnonzero(both.ravel()) % ncell,
            np.count_nonzero(both, axis=1),
            z[s : e - 1],
            z[s + 1 : e],
        )
        bulge = _bulges(areas[s:e], lengths[s:e], linear)
        either = inside[:-1] ^ inside[1:]  # inside one of the two planes
        for g in np.flatnonzero(bulge > 0).tolist():
            _add_bulged(acc, sdf[g], sdf[g + 1], float(bulge[g]), z[s + g : s + g + 2])
            either[g] = False
        xor = np.flatnonzero((either & linear[:, None]).ravel())
        gap, cell = np.divmod(xor, ncell)
        za, zb = linear_inside(
            z[s + gap], z[s + gap + 1], sdf[gap, cell], sdf[gap + 1, cell]
        )
        acc.add(cell, za, zb)
        for g, end, q_tip, q_from in tips:
            if not s <= g < e - 1:
                continue
            f_from, f_tip = sdf[q_from - s], sdf[q_tip - s]
            cells = np.flatnonzero((f_from < 0) | (f_tip < 0))
            za, zb = _warped_inside(end, float(z[q_tip]), f_from[cells], f_tip[cells])
            acc.add(cells, za, zb)
        for end, outer, inner in flat:
            if s <= min(outer, inner) and max(outer, inner) < e:
                _flat_cap(acc, end, float(z[inner]), sdf[outer - s], sdf[inner - s])
        for end, outer in ((run.start, 0), (run.end, n)):
            if end.area is not None and not end.tip and s <= outer < e:
                _pointed_cap(acc, end, sdf[outer - s])
