"""Histogram bins of the DVH engine: their limit and binned accumulation (private)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from etl.errors import DoseGridError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: Most bins a histogram may have (20,000 Gy at 0.01 Gy): each array of bins then
#: holds at most 16 MB, whatever the input (a DoseGridScaling of 1e30, a NaN dose).
MAX_DVH_BINS = 2_000_000


def check_bins(max_gy: float, bin_width_gy: float) -> None:
    """Refuse a histogram up to ``max_gy`` of more than :data:`MAX_DVH_BINS` bins.

    Raises
    ------
    DoseGridError
        When ``max_gy`` is not finite or needs too many bins.
    """
    if not max_gy / bin_width_gy < MAX_DVH_BINS:
        raise DoseGridError(
            f"a dose of {max_gy:.4g} Gy needs more than {MAX_DVH_BINS:,} bins of "
            f"{bin_width_gy:g} Gy: not a plausible dose"
        )


def add_weights(
    acc: FloatArray, idx: IntArray, wts: FloatArray, shift: int, sign: float = 1.0
) -> FloatArray:
    """Add ``sign * bincount(idx, wts)`` to ``acc`` at an offset of ``shift`` bins."""
    binned = np.bincount(idx, weights=wts).astype(np.float64, copy=False)
    return add_binned(acc, binned, shift, sign)


def add_binned(
    acc: FloatArray, binned: FloatArray, shift: int, sign: float = 1.0
) -> FloatArray:
    """Add ``binned`` (or subtract, ``sign`` < 0) to ``acc`` at an offset of ``shift``.

    ``acc`` grows as needed.
    """
    need = len(binned) + shift
    if need > len(acc):
        acc = np.concatenate([acc, np.zeros(max(need - len(acc), len(acc) // 2))])
    if sign < 0:
        acc[shift:need] -= binned
    else:
        acc[shift:need] += binned
    return acc
