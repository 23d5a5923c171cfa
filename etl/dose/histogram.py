"""The dose-volume histogram type and its cumulative forms (pure numpy).

:class:`DVH` is what :func:`etl.dose.dvh.compute_dvh` returns; :func:`tail_volumes`
and :func:`cumulative_nodes` turn differential histograms into cumulative ones (also
for the point-mass DVHs of :mod:`ntcp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DVH", "cumulative_nodes", "tail_volumes"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class DVH:
    """A dose-volume histogram with exact summary statistics.

    Attributes
    ----------
    volume_cc : float
        Total volume of the structure (inside and outside the dose grid), cm3.
    outside_grid_cc : float
        Part of ``volume_cc`` outside the dose grid, not in the histogram.
    min_gy, mean_gy, max_gy : float
        Over the part inside the grid; NaN when nothing is inside.
    bin_width_gy : float
        Width of the histogram bins.
    differential_cc : ndarray
        Volume (cm3) per bin; bin ``b`` covers ``[b * w, (b + 1) * w)`` Gy.
    """

    volume_cc: float
    outside_grid_cc: float
    min_gy: float
    mean_gy: float
    max_gy: float
    bin_width_gy: float
    differential_cc: FloatArray

    @property
    def inside_grid_cc(self) -> float:
        """Volume covered by the histogram (inside the dose grid), cm3."""
        return float(np.sum(self.differential_cc))

    def cumulative(self) -> tuple[FloatArray, FloatArray]:
        """Return the cumulative DVH at the bin edges.

        Returns
        -------
        dose_gy : ndarray, shape (n_bins + 1,)
            Bin edges ``0, w, 2w, ...``.
        volume_cc : ndarray, shape (n_bins + 1,)
            Volume receiving at least each dose.
        """
        n = len(self.differential_cc)
        edges = np.arange(n + 1, dtype=np.float64) * self.bin_width_gy
        tail = np.concatenate([tail_volumes(self.differential_cc), [0.0]])
        return edges, tail


def tail_volumes(differential: NDArray[np.floating[Any]]) -> FloatArray:
    """Volume at or above each bin of a differential DVH (along the last axis).

    The one place a differential histogram becomes a cumulative one.

    Parameters
    ----------
    differential
        Volumes per bin in increasing dose order, shape ``(..., bins)``.

    Returns
    -------
    ndarray
        Same shape; entry ``b`` is the volume of bins ``b, b + 1, ...``.

    Examples
    --------
    >>> tail_volumes(np.array([1.0, 2.0, 3.0])).tolist()
    [6.0, 5.0, 3.0]
    """
    diff = np.asarray(differential, dtype=np.float64)
    return np.asarray(np.cumsum(diff[..., ::-1], axis=-1)[..., ::-1])


def cumulative_nodes(
    dvh: DVH | NDArray[np.floating[Any]],
    volume: NDArray[np.floating[Any]] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Nodes of a cumulative DVH: doses and the volume receiving at least each.

    Two representations of a differential DVH have one cumulative curve, read by
    linear interpolation between the nodes (:mod:`etl.dose.metrics`):

    * a :class:`DVH` (dose uniform within each bin): the exact minimum, the bin
      edges strictly between, the exact maximum; the full in-grid volume at the
      minimum, 0 at the maximum;
    * point masses ``(dose_gy, volume)`` (the bin-centre DVHs of :mod:`ntcp`):
      a step function, two nodes at each occupied dose (the volume at or above it,
      then above it), so that interpolation is constant between the doses. Bins
      without volume are left out.

    Parameters
    ----------
    dvh
        A :class:`DVH`, or the doses (Gy) of point masses, shape ``(bins,)``.
    volume
        The volumes of the point masses (any unit); only with an array of doses.

    Returns
    -------
    dose_gy, volume : ndarray
        Non-decreasing doses and non-increasing volumes.

    Examples
    --------
    >>> d, v = cumulative_nodes(np.array([10.0, 30.0]), np.array([0.75, 0.25]))
    >>> d.tolist(), v.tolist()
    ([10.0, 10.0, 30.0, 30.0], [1.0, 0.25, 0.25, 0.0])
    """
    if isinstance(dvh, DVH):
        edges, vol = dvh.cumulative()
        total = float(vol[0]) if len(vol) else 0.0
        inner = (edges > dvh.min_gy) & (edges < dvh.max_gy)
        dose = np.concatenate([[dvh.min_gy], edges[inner], [dvh.max_gy]])
        return dose, np.concatenate([[total], vol[inner], [0.0]])
    if volume is None:
        raise ValueError("volume is required with an array of doses")
    d = np.asarray(dvh, dtype=np.float64).ravel()
    v = np.asarray(volume, dtype=np.float64).ravel()
    if d.shape != v.shape:
        raise ValueError(f"dose and volume differ in shape: {d.shape}, {v.shape}")
    keep = v > 0
    order = np.argsort(d[keep], kind="stable")
    d, v = d[keep][order], v[keep][order]
    at_or_above = tail_volumes(v)
    above = np.concatenate([at_or_above[1:], [0.0]])
    return np.repeat(d, 2), np.column_stack([at_or_above, above]).ravel()
