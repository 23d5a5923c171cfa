"""Dose along the columns of an in-plane raster, accumulated exactly (private).

The DVH engine describes a structure as columns: a raster cell ``c`` of area ``a`` and
an extent ``[za, zb]`` along the slice normal (grid mm). Trilinear dose is linear along
the normal between two dose planes, so each column is cut at the dose planes into
segments over which the dose is uniformly distributed between its two end values. A
segment adds to the histogram exactly: its cumulative contribution is a ramp, whose
two kinks are spread over the neighbouring bin edges (second differences), and the
differential histogram is one cumulative sum of them. Mean, minimum and maximum are
exact for the columns too.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from etl.dose._bins import MAX_DVH_BINS, add_binned, add_weights, check_bins

__all__ = ["MAX_DVH_BINS", "ColumnHistogram", "check_bins"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

_FLAT_BINS = 1e-3  # a segment narrower than this (in bins) is a point mass
_BATCH = 65_536  # columns handled at once (arrays that stay in cache)


class ColumnHistogram:
    """Accumulates columns of a structure into an exact dose-volume histogram.

    Parameters
    ----------
    planes
        In-plane dose on the raster for dose planes ``k0, k0 + 1, ...`` (from
        :mod:`etl.dose._sampling`), one row per plane.
    k0
        Index of the first plane of ``planes``.
    n_frames
        Number of planes of the dose grid.
    dk
        Distance between dose planes (mm).
    in_plane
        Per raster cell, whether it lies within the grid in-plane.
    cell_mm2
        Area of a raster cell.
    bin_width_gy
        Histogram bin width.
    exact
        Spread each segment over its dose range (default); otherwise add it as a point
        mass at its mean dose (for structures sampled at the dose-grid resolution).
    cells_at
        Where each raster cell's dose is in a row of ``planes`` (default: the cell's
        own index): ``planes`` may then be the dose grid's planes themselves.
    dose_range
        Minimum and maximum of the dose at the cells (default: of ``planes``).
    """

    def __init__(
        self,
        planes: FloatArray,
        *,
        k0: int,
        n_frames: int,
        dk: float,
        in_plane: NDArray[np.bool_],
        cell_mm2: float,
        bin_width_gy: float,
        exact: bool = True,
        cells_at: IntArray | None = None,
        dose_range: tuple[float, float] | None = None,
    ) -> None:
        self._planes = planes
        self._cells_at = cells_at
        self._ncell = planes.shape[1]
        self._k0 = k0
        self._nk = n_frames
        self._dk = dk
        self._in_plane = in_plane
        self._area = cell_mm2
        self._bw = bin_width_gy
        self._exact = exact
        self._all_in_plane = bool(np.all(in_plane))
        if dose_range is None and planes.size:
            dose_range = (float(planes.min()), float(np.max(planes)))
        if dose_range is not None:
            check_bins(dose_range[1], bin_width_gy)
        self._clip_negative = dose_range is not None and dose_range[0] < 0
        self._kinks = np.zeros(0)
        self._points = np.zeros(0)
        self.inside_mm3 = 0.0
        self.outside_mm3 = 0.0
        self.dose_mm3 = 0.0  # integral of dose over the inside volume (Gy mm3)
        self.min_gy = np.inf
        self.max_gy = -np.inf

    def add(self, cells: IntArray, za: FloatArray, zb: FloatArray) -> None:
        """Add columns (raster cell indices, extents ``[za, zb]`` in grid mm)."""
        for s in range(0, len(cells), _BATCH):
            self._add_batch(
                cells[s : s + _BATCH], za[s : s + _BATCH], zb[s : s + _BATCH]
            )

    def add_prism(self, cells: IntArray, za: float, zb: float) -> None:
        """Add columns that share one extent ``[za, zb]`` (grid mm): a prism."""
        if not zb > za or cells.size == 0:
            return
        inp = self._in_plane[cells]
        if not np.all(inp):
            self.outside_mm3 += self._area * (zb - za) * int(np.sum(~inp))
            cells = cells[inp]
            if cells.size == 0:
                return
        dk, nk = self._dk, self._nk
        ga = min(max(za / dk, -0.5), nk - 0.5)
        gb = min(max(zb / dk, -0.5), nk - 0.5)
        if ga != za / dk or gb != zb / dk:
            cut = zb - za - max(gb - ga, 0.0) * dk
            self.outside_mm3 += self._area * cells.size * cut
        if not gb > ga:
            return
        top = max(nk - 2, 0)
        at = self._at(cells)
        first = int(np.floor(ga))
        taken: tuple[int, FloatArray] | None = None  # the dose on the last plane k + 1
        for kk in range(first, int(np.ceil(gb))):
            lo, hi = max(ga, kk), min(gb, kk + 1)
            if not hi > lo:
                continue
            k = min(max(kk, 0), top)
            if taken is not None and taken[0] == k:
                s0 = taken[1]
            else:
                s0 = self._planes[k - self._k0].take(at)
            s1 = self._planes[k + 1 - self._k0].take(at) if nk > 1 else s0
            taken = (k + 1, s1)
            w = (hi - lo) * dk * self._area
            fa = min(max(lo - k, 0.0), 1.0)
            fb = min(max(hi - k, 0.0), 1.0)
            if self._exact:
                da = s0 * (1.0 - fa) + s1 * fa
                db = s0 * (1.0 - fb) + s1 * fb
                self._segments(da, db, np.full(len(da), w))
            else:
                fm = (fa + fb) / 2
                self._midpoints(s0 * (1.0 - fm) + s1 * fm, w, s0, s1)

    def add_runs(
        self, cells: IntArray, counts: IntArray, za: FloatArray, zb: FloatArray
    ) -> None:
        """Add runs of columns, ``counts[r]`` cells sharing ``[za[r], zb[r]]`` each.

        The same, bit for bit, as :meth:`add` with the extents repeated per cell; each
        run's extent is cut once (the columns inside both planes of a gap).
        """
        ends = np.cumsum(counts)
        for s in range(0, len(cells), _BATCH):
            e = min(s + _BATCH, len(cells))
            r0 = int(np.searchsorted(ends, s, side="right"))
            r1 = int(np.searchsorted(ends, e, side="left")) + 1
            n = np.minimum(ends[r0:r1], e) - np.maximum(ends[r0:r1] - counts[r0:r1], s)
            keep = n > 0
            self._add_runs_batch(cells[s:e], n[keep], za[r0:r1][keep], zb[r0:r1][keep])

    def _add_runs_batch(
        self, cells: IntArray, n: IntArray, za: FloatArray, zb: FloatArray
    ) -> None:
        dk, nk = self._dk, self._nk
        ga, gb = za * (1.0 / dk), zb * (1.0 / dk)
        plain = (
            bool(np.all(gb > ga))
            and not float(ga.min()) < -0.5  # noqa: PLR2004
            and not float(gb.max()) > nk - 0.5
            and (self._all_in_plane or bool(np.all(self._in_plane[cells])))
        )
        if not plain:  # columns to drop or clip: as add() does it
            self._add_batch(cells, np.repeat(za, n), np.repeat(zb, n))
            return
        first = np.floor(ga)
        npieces = int(np.max(np.ceil(gb) - first))
        top = max(nk - 2, 0)
        clip_k = float(first.min()) < 0 or float(first.max()) + npieces - 1 > top
        for j in range(npieces):
            if j == 0:
                lo, cj, kk, nj = ga, cells, first, n
                hi = gb if npieces == 1 else np.minimum(gb, first + 1)
            else:
                lo = np.maximum(ga, first + j)
                hi = np.minimum(gb, first + j + 1)
                sel = hi > lo
                lo, hi, kk, nj = lo[sel], hi[sel], first[sel] + j, n[sel]
                if not np.any(nj):
                    continue
                cj = cells[np.repeat(sel, n)]
            if clip_k:
                kk = np.clip(kk, 0, top)
            base = kk.astype(np.intp)
            base -= self._k0
            base *= self._ncell
            self._piece(
                np.repeat(base, nj) + self._at(cj),
                np.repeat(lo - kk, nj),
                np.repeat(hi - kk, nj),
                np.repeat(hi - lo, nj),
                clip_k,
            )

    def _add_batch(self, cells: IntArray, za: FloatArray, zb: FloatArray) -> None:
        # In grid units along the normal; the grid reaches half a plane beyond.
        dk, nk = self._dk, self._nk
        inside = self._inside(cells, za * (1.0 / dk), zb * (1.0 / dk))
        if inside is None:
            return
        cells, ga, gb = inside
        first = np.floor(ga)
        npieces = int(np.max(np.ceil(gb) - first))
        top = max(nk - 2, 0)
        clip_k = float(first.min()) < 0 or float(first.max()) + npieces - 1 > top
        for j in range(npieces):
            if j == 0:  # every column has its first piece: nothing to select
                lo, cj, kk = ga, cells, first
                hi = gb if npieces == 1 else np.minimum(gb, first + 1)
            else:
                lo = np.maximum(ga, first + j)
                hi = np.minimum(gb, first + j + 1)
                sel = hi > lo
                lo, hi, cj, kk = lo[sel], hi[sel], cells[sel], first[sel] + j
                if cj.size == 0:
                    continue
            if clip_k:
                kk = np.clip(kk, 0, top)
            base = kk.astype(np.intp)  # (in place:) the dose of cj on plane k
            base -= self._k0
            base *= self._ncell
            base += self._at(cj)
            self._piece(base, lo - kk, hi - kk, hi - lo, clip_k)  # kk: k as floats

    def _at(self, cells: IntArray) -> IntArray:
        """Where the dose of ``cells`` is in a row of the planes."""
        return cells if self._cells_at is None else self._cells_at.take(cells)

    def _piece(
        self, base: IntArray, fa: FloatArray, fb: FloatArray, w: FloatArray, clip: bool
    ) -> None:
        """Add one piece of columns between dose planes ``k`` and ``k + 1``.

        ``base`` indexes the dose of each column on plane ``k`` in the flattened planes;
        ``fa``, ``fb`` are the ends of the piece as fractions of the way to plane
        ``k + 1`` (clipped to ``[0, 1]`` when ``clip``), ``w`` its length in planes.
        All are used as work space.
        """
        planes = self._planes.ravel()
        s0 = planes.take(base)
        if self._nk > 1:
            base += self._ncell  # and on plane k + 1: step = s1 - s0
            step = planes.take(base)
            step -= s0
        else:
            step = s0 - s0
        if clip:
            np.clip(fa, 0.0, 1.0, out=fa)
            np.clip(fb, 0.0, 1.0, out=fb)
        da = fa * step  # s0 + fa * step
        da += s0
        db = fb * step
        db += s0
        w *= self._dk * self._area
        if self._exact:
            self._segments(da, db, w)
        else:
            self._midpoints((da + db) * 0.5, w, da, db)

    def _inside(
        self, cells: IntArray, ga: FloatArray, gb: FloatArray
    ) -> tuple[IntArray, FloatArray, FloatArray] | None:
        """Keep the parts of columns inside the grid (grid units); count the rest.

        Returns None when nothing is left.
        """
        dk, nk = self._dk, self._nk
        if not self._all_in_plane:
            inp = self._in_plane[cells]
            if not np.all(inp):
                out = np.maximum(gb[~inp] - ga[~inp], 0.0)
                self.outside_mm3 += self._area * dk * float(np.sum(out))
                cells, ga, gb = cells[inp], ga[inp], gb[inp]
        keep = gb > ga
        if not np.all(keep):
            cells, ga, gb = cells[keep], ga[keep], gb[keep]
        if cells.size == 0:
            return None
        if float(ga.min()) < -0.5 or float(gb.max()) > nk - 0.5:  # noqa: PLR2004
            ga_in = np.clip(ga, -0.5, nk - 0.5)
            gb_in = np.clip(gb, -0.5, nk - 0.5)
            cut = (gb - ga) - np.maximum(gb_in - ga_in, 0.0)
            self.outside_mm3 += self._area * dk * float(np.sum(cut))
            keep = gb_in > ga_in
            cells, ga, gb = cells[keep], ga_in[keep], gb_in[keep]
            if cells.size == 0:
                return None
        return cells, ga, gb

    def _midpoints(
        self, mid: FloatArray, w: FloatArray | float, da: FloatArray, db: FloatArray
    ) -> None:
        """Add segments as point masses at their mean dose ``mid`` (sampling mode).

        ``w`` is the volume of each segment (one value for all, or one each); ``da``
        and ``db`` are the doses at their ends (for the minimum and maximum).
        """
        self.min_gy = min(self.min_gy, float(da.min()), float(db.min()))
        self.max_gy = max(self.max_gy, float(da.max()), float(db.max()))
        if self._clip_negative:
            np.maximum(mid, 0.0, out=mid)
        idx = (mid * (1.0 / self._bw)).astype(np.intp)
        if isinstance(w, float):
            self.inside_mm3 += w * len(mid)
            self.dose_mm3 += w * float(np.sum(mid))
            counts = np.bincount(idx).astype(np.float64) * w
            self._points = add_binned(self._points, counts, 0)
            return
        self.inside_mm3 += float(np.sum(w))
        self.dose_mm3 += float(np.einsum("i,i->", mid, w))
        self._points = add_weights(self._points, idx, w, 0)

    def _segments(self, da: FloatArray, db: FloatArray, w: FloatArray) -> None:
        """Add segments of dose uniform between ``da`` and ``db`` (either order).

        ``da`` and ``db`` are used as work space (overwritten).
        """
        self.inside_mm3 += float(np.sum(w))
        upper, lower = np.empty((2, len(da)))
        # (not np.dot: a threaded BLAS call is slow on a loaded machine)
        self.dose_mm3 += float(np.einsum("i,i->", np.add(da, db, out=upper), w)) / 2.0
        self.min_gy = min(self.min_gy, float(da.min()), float(db.min()))
        self.max_gy = max(self.max_gy, float(da.max()), float(db.max()))
        if self._clip_negative:
            np.maximum(da, 0.0, out=da)
            np.maximum(db, 0.0, out=db)
        inv = 1.0 / self._bw
        p = np.multiply(da, inv, out=da)  # the kink pa, in bins
        width = np.multiply(db, inv, out=db)
        width -= p
        # A ramp of slope w / width between the kinks pa and pb = pa + width (either
        # order), each kink shared between the two bin edges around it; a nearly
        # uniform dose is a ramp of a thousandth of a bin.
        np.copyto(width, _FLAT_BINS, where=np.abs(width) < _FLAT_BINS)
        slope = w / width
        for sign in (1.0, -1.0):
            np.trunc(p, out=upper)  # p >= 0: truncation is floor
            ip = upper.astype(np.intp)
            np.subtract(p, upper, out=upper)
            upper *= slope
            np.subtract(slope, upper, out=lower)
            # The kink at pb goes down: its binned shares are subtracted (exactly
            # the sums of the negated shares).
            self._kinks = add_weights(self._kinks, ip, lower, 0, sign)
            self._kinks = add_weights(self._kinks, ip, upper, 1, sign)
            if sign > 0:
                p += width  # pa -> pb

    def differential_cc(self) -> FloatArray:
        """Return the differential histogram (cm3 per bin) of the inside volume."""
        n = max(len(self._kinks), len(self._points))
        hist = np.zeros(n)
        hist[: len(self._kinks)] = np.cumsum(self._kinks)
        hist[: len(self._points)] += self._points
        # No volume below the minimum or above the maximum (clears round-off there).
        if not np.isfinite(self.max_gy):
            return np.zeros(0)
        first = int(np.floor(max(self.min_gy, 0.0) / self._bw))
        last = int(np.floor(max(self.max_gy, 0.0) / self._bw))
        hist = np.pad(hist, (0, max(last + 1 - n, 0)))[: last + 1]
        hist[:first] = 0.0
        hist = np.maximum(hist, 0.0)
        total = float(hist.sum())
        if total > 0:
            hist *= (self.inside_mm3 / 1000.0) / total
        return hist
