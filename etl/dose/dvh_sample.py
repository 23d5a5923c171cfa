r"""Cumulative DVHs of many patients sampled on one dose grid, physical or EQD2.

What the population DVH band (:func:`cohort.benchmark.queries_dose.dvh_band`) and
the summary table of sampled curves (:mod:`etl.store.dvh_samples`, through
:func:`sample_each`) need, for all curves at once (numpy over a flat array of every
histogram) instead of one curve at a time. The values are those of the per-curve
path, to rounding:

* physical: :meth:`etl.dose.histogram.DVH.cumulative` (the volume at or above each
  bin edge), read on the grid by linear interpolation, 0 beyond the last edge;
* EQD2: :func:`etl.dose.radiobiology.dvh_to_eqd2` (the cumulative nodes -- exact
  minimum, bin edges strictly between, exact maximum -- mapped to EQD2 and read at
  the bin edges of the same width by linear interpolation in EQD2), then as above.

For EQD2 the node interval holding a dose :math:`x` is found through the inverse of
:math:`g(D) = D (D/n + \alpha/\beta) / (2 + \alpha/\beta)`,

.. math::

    g^{-1}(x) = \frac{n}{2}\left(\sqrt{(\alpha/\beta)^2
        + 4 x (2 + \alpha/\beta) / n} - \alpha/\beta\right),

and the volume is interpolated linearly in :math:`g` between the two nodes, as
``numpy.interp`` does over the mapped nodes. Volumes are percentages of each
curve's volume inside the dose grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from etl.dose._columns import MAX_DVH_BINS, check_bins
from etl.dose.histogram import DVH
from etl.dose.radiobiology import eqd2_gy
from etl.errors import DoseGridError

__all__ = ["sample_cumulative", "sample_each"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_ON_EDGE = 1e-9  # grid points this close (in bins) to a bin edge are read there


class _Flat:
    """Every histogram in one array, each as fractions of its own in-grid volume."""

    def __init__(self, dvhs: Sequence[DVH]) -> None:
        diffs = [np.asarray(d.differential_cc, dtype=float) for d in dvhs]
        self.length = np.array([d.size for d in diffs], dtype=np.int64)
        self.start = np.concatenate(([0], np.cumsum(self.length)[:-1])).astype(np.int64)
        self.end = self.start + self.length
        flat = np.concatenate([*diffs, np.zeros(0)])
        owner = np.repeat(np.arange(len(diffs)), self.length)
        self.total = np.bincount(owner, weights=flat, minlength=len(diffs))
        scale = np.where(self.total > 0, self.total, np.inf)
        self.sums = np.concatenate(([0.0], np.cumsum(flat / scale[owner])))

    def tail(self, r: IntArray, j: IntArray) -> FloatArray:
        """Fraction at or above bin edge ``j`` of curve ``r``, 0 from the last edge."""
        jj = np.clip(j, 0, self.length[r])
        return np.asarray(self.sums[self.end[r]] - self.sums[self.start[r] + jj])


def _eqd2_at(
    flat: _Flat,
    r: IntArray,
    x: FloatArray,
    curves: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    ab: float,
) -> FloatArray:
    """Fraction of curve ``r`` at or above EQD2 ``x`` (inside the mapped range)."""
    low, high, w, n = (c[r] for c in curves)
    phys = n / 2.0 * (np.sqrt(ab * ab + 4.0 * x * (2.0 + ab) / n) - ab)
    j = np.floor(phys / w).astype(np.int64)
    e_lo, e_up = j.astype(float) * w, (j + 1).astype(float) * w
    lo_min, up_max = e_lo <= low, e_up >= high
    d_lo = np.where(lo_min, low, e_lo)
    d_up = np.where(up_max, high, e_up)
    v_lo = np.where(lo_min, 1.0, flat.tail(r, j))
    v_up = np.where(up_max, 0.0, flat.tail(r, j + 1))
    g_lo, g_up = eqd2_gy(d_lo, n, ab), eqd2_gy(d_up, n, ab)
    return np.asarray(v_lo + (x - g_lo) * (v_up - v_lo) / (g_up - g_lo))


def _eqd2_cumulative(
    flat: _Flat,
    kept: IntArray,
    x: FloatArray,
    curves: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    ab: float,
) -> FloatArray:
    """Fraction of curves ``kept`` (rows) at or above EQD2 doses ``x``."""
    low, high, _, n = (c[kept] for c in curves)
    g_low = eqd2_gy(low, n, ab)[:, None]
    g_high = eqd2_gy(high, n, ab)[:, None]
    out = np.where(x < g_low, 1.0, 0.0)
    inside = (x >= g_low) & (x < g_high)
    r, _ = np.nonzero(inside)
    out[inside] = _eqd2_at(flat, kept[r], x[inside], curves, ab)
    return out


def _sample(
    dvhs: Sequence[DVH],
    step_gy: float,
    fractions: Sequence[float] | None,
    alpha_beta_gy: float,
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_], FloatArray]:
    """:func:`sample_cumulative`, and each curve's last node (dose past its end)."""
    if not dvhs:
        return np.zeros(1), np.zeros((0, 1)), np.zeros(0, dtype=bool), np.zeros(0)
    flat = _Flat(dvhs)
    width = np.array([d.bin_width_gy for d in dvhs], dtype=float)
    low = np.array([d.min_gy for d in dvhs], dtype=float)
    high = np.array([d.max_gy for d in dvhs], dtype=float)
    n = np.asarray(np.ones(len(dvhs)) if fractions is None else fractions, float)
    kept = flat.total > 0
    if fractions is None:
        last = flat.length.astype(float) * width
    else:
        kept &= np.isfinite(low)
        g_high = eqd2_gy(np.where(kept, high, 0.0), n, alpha_beta_gy)
        bad = kept & ~(g_high / width < MAX_DVH_BINS)
        if bad.any():
            i = int(np.argmax(bad))
            check_bins(float(g_high[i]), float(width[i]))
        last = (np.floor(g_high / width) + 1) * width
    top = float(np.max(last[kept])) if kept.any() else 0.0
    grid = np.arange(0.0, top + step_gy, step_gy)
    curves = (low, high, width, n)
    idx = np.flatnonzero(kept)
    w = width[idx][:, None]
    pos = grid[None, :] / w
    # A grid on bin edges (1 Gy steps of 0.1 Gy bins): one reading per point.
    on_edges = bool(np.all(np.abs(pos - np.rint(pos)) <= _ON_EDGE))
    j = (np.rint(pos) if on_edges else np.floor(pos)).astype(np.int64)
    e0, e1 = j.astype(float) * w, (j + 1).astype(float) * w
    rows = np.broadcast_to(idx[:, None], j.shape)
    if fractions is None:
        v0 = flat.tail(rows, j)
        v1 = v0 if on_edges else flat.tail(rows, j + 1)
    else:
        v0 = _eqd2_cumulative(flat, idx, e0, curves, alpha_beta_gy)
        v1 = v0 if on_edges else _eqd2_cumulative(flat, idx, e1, curves, alpha_beta_gy)
    value = v0 + (grid[None, :] - e0) * (v1 - v0) / (e1 - e0)
    value = np.where(grid[None, :] > last[kept][:, None], 0.0, value)
    return grid, 100.0 * value, kept, last


def sample_cumulative(
    dvhs: Sequence[DVH],
    step_gy: float,
    *,
    fractions: Sequence[float] | None = None,
    alpha_beta_gy: float = 3.0,
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Sample every curve's cumulative DVH (percent of its volume) on one grid.

    Parameters
    ----------
    dvhs : sequence of DVH
        Physical-dose histograms.
    step_gy : float
        Spacing of the grid, from 0 to the highest last bin edge of the kept curves.
    fractions : sequence of float, optional
        Fractions of each curve's course: convert to EQD2 (else physical dose).
    alpha_beta_gy : float
        Alpha/beta of the EQD2 conversion.

    Returns
    -------
    grid : ndarray, shape (k,)
        Doses (Gy).
    samples : ndarray, shape (kept, k)
        Volume (%) receiving at least each dose, one row per kept curve.
    kept : ndarray of bool, shape (len(dvhs),)
        Curves with volume inside the grid (the others cannot be normalised).

    Raises
    ------
    etl.errors.DoseGridError
        When an EQD2 maximum needs an implausible number of bins.
    """
    grid, samples, kept, _ = _sample(dvhs, step_gy, fractions, alpha_beta_gy)
    return grid, samples, kept


def sample_each(
    dvhs: Sequence[DVH],
    step_gy: float,
    *,
    fractions: Sequence[float] | None = None,
    alpha_beta_gy: float = 3.0,
) -> list[FloatArray | None]:
    """Sample each curve on its own grid: 0, ``step_gy``, ... past its last node.

    Row ``i`` is what :func:`sample_cumulative` returns for curve ``i`` alone (to
    rounding): its grid is ``numpy.arange(0, last + step_gy, step_gy)``, ``last``
    the dose where the curve ends (its values beyond are 0). Sampled with
    other curves, the common grid is the longest of these grids and the shorter rows
    continue with zeros.

    Returns
    -------
    list of ndarray or None
        Volume (%) per grid point; empty for a curve without volume inside the grid
        (left out of a band); None for a curve :func:`sample_cumulative` refuses
        (:class:`~etl.errors.DoseGridError`: an implausible EQD2 maximum).
    """
    if not dvhs:
        return []
    try:
        _, samples, kept, last = _sample(dvhs, step_gy, fractions, alpha_beta_gy)
    except DoseGridError:
        if len(dvhs) == 1:
            return [None]
        return [
            sample_each([d], step_gy, alpha_beta_gy=alpha_beta_gy,
                        fractions=None if fractions is None else [fractions[i]])[0]
            for i, d in enumerate(dvhs)
        ]  # fmt: skip
    out: list[FloatArray | None] = [np.zeros(0) for _ in dvhs]
    for row, i in enumerate(np.flatnonzero(kept)):
        size = len(np.arange(0.0, float(last[i]) + step_gy, step_gy))
        out[int(i)] = np.ascontiguousarray(samples[row, :size])
    return out
