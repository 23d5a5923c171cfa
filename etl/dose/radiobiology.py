r"""Linear-quadratic dose conversions and gEUD (pure numpy).

.. math::

    \\mathrm{BED} = D \\left(1 + \\frac{d}{\\alpha/\\beta}\\right), \\qquad
    \\mathrm{EQD2} = D \\, \\frac{d + \\alpha/\\beta}{2 + \\alpha/\\beta}, \\qquad
    d = D / n

applied per dose bin (each voxel receives its own dose per fraction), and

.. math::

    \\mathrm{gEUD} = \\Big(\\sum_i v_i D_i^{a}\\Big)^{1/a}, \\qquad a = 1/n

with fractional volumes :math:`v_i`.

References
----------
Fowler JF. The linear-quadratic formula and progress in fractionated radiotherapy.
Br J Radiol 1989;62:679-94. Niemierko A. A generalized concept of equivalent uniform
dose. Med Phys 1999;26:1100.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from etl.dose._columns import check_bins
from etl.dose.dvh import DVH, cumulative_nodes

__all__ = ["bed_gy", "dvh_to_eqd2", "eqd2_gy", "geud_gy"]


def _check(n_fractions: ArrayLike, alpha_beta_gy: float) -> None:
    if not np.all(np.asarray(n_fractions, dtype=np.float64) > 0):
        raise ValueError(f"n_fractions must be positive, got {n_fractions!r}")
    if not alpha_beta_gy > 0:
        raise ValueError(f"alpha_beta_gy must be positive, got {alpha_beta_gy}")


def bed_gy(
    dose_gy: ArrayLike, n_fractions: float, alpha_beta_gy: float
) -> NDArray[np.float64]:
    """Biologically effective dose of a total dose given in ``n_fractions`` fractions.

    Examples
    --------
    >>> float(bed_gy(60.0, 30, 10.0))
    72.0
    """
    _check(n_fractions, alpha_beta_gy)
    d = np.asarray(dose_gy, dtype=np.float64)
    return d * (1.0 + d / n_fractions / alpha_beta_gy)


def eqd2_gy(
    dose_gy: ArrayLike, n_fractions: ArrayLike, alpha_beta_gy: float
) -> NDArray[np.float64]:
    """Equivalent dose in 2 Gy fractions (``n_fractions`` broadcasts against dose).

    Examples
    --------
    >>> float(eqd2_gy(40.0, 5, 3.0))  # 5 x 8 Gy, alpha/beta 3 Gy
    88.0
    """
    _check(n_fractions, alpha_beta_gy)
    d = np.asarray(dose_gy, dtype=np.float64)
    nfx = np.asarray(n_fractions, dtype=np.float64)
    return d * (d / nfx + alpha_beta_gy) / (2.0 + alpha_beta_gy)


def geud_gy(
    dose: DVH | ArrayLike,
    volume: ArrayLike | None = None,
    *,
    a: float | None = None,
    n: float | None = None,
    normalise: bool = True,
) -> float | NDArray[np.float64]:
    """Generalised equivalent uniform dose (the one gEUD; :mod:`ntcp` calls it).

    Parameters
    ----------
    dose
        A :class:`~etl.dose.dvh.DVH` (bin centres and differential volumes), or doses
        in Gy with ``volume`` the matching volumes, shape ``(bins,)`` or
        ``(patients, bins)`` (one gEUD per row).
    volume
        Volumes of ``dose`` when it is an array.
    a, n
        The volume-effect parameter, as ``a`` or as ``n = 1 / a`` (exactly one).
    normalise
        Divide the volumes by their sum (default); otherwise they are taken as
        fractions as given (the convention of :mod:`ntcp`, whose DVHs are
        validated to sum to 1 within a tolerance).

    Returns
    -------
    float or ndarray
        A float for one DVH (NaN without volume), an array of one value per row
        for a 2-D input.

    Notes
    -----
    Evaluated as ``D_max (sum_i v_i (D_i / D_max)^a)^(1/a)`` with ``D_max`` the
    largest dose with volume, which neither overflows nor underflows for large
    ``a``; a row without dose gives 0.

    Examples
    --------
    >>> geud_gy([10.0, 20.0], [1.0, 1.0], a=1)
    15.0
    """
    if (a is None) == (n is None):
        raise ValueError("give exactly one of a and n")
    power = float(a) if a is not None else 1.0 / float(n)  # type: ignore[arg-type]
    if power == 0:
        raise ValueError("a must be non-zero")
    if isinstance(dose, DVH):
        w = dose.bin_width_gy
        d = (np.arange(len(dose.differential_cc)) + 0.5) * w
        v = dose.differential_cc
    else:
        if volume is None:
            raise ValueError("volume is required with an array of doses")
        d = np.asarray(dose, dtype=np.float64)
        v = np.asarray(volume, dtype=np.float64)
    rows_d, rows_v = np.atleast_2d(d), np.atleast_2d(v)
    occupied = rows_v > 0
    total = rows_v.sum(axis=1, where=occupied, initial=0.0)
    frac = rows_v / np.where(total > 0, total, 1.0)[:, None] if normalise else rows_v
    dmax = np.max(rows_d, axis=1, where=occupied, initial=0.0)
    scaled = rows_d / np.where(dmax > 0, dmax, 1.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(occupied, frac * scaled**power, 0.0)
    out = np.where(dmax > 0, dmax * terms.sum(axis=1) ** (1.0 / power), 0.0)
    out = np.where(occupied.any(axis=1), out, np.nan)
    if np.ndim(d) > 1:
        return np.asarray(out, dtype=np.float64)
    return float(out[0])


def dvh_to_eqd2(dvh: DVH, n_fractions: float, alpha_beta_gy: float) -> DVH:
    """Convert a physical-dose DVH to EQD2, re-binned at the same bin width.

    The cumulative DVH is mapped point by point (EQD2 is increasing in dose), then read
    at the new bin edges by linear interpolation; min and max are mapped exactly, the
    mean assumes dose uniform within each bin.

    Examples
    --------
    >>> import numpy as np
    >>> d = DVH(1.0, 0.0, 30.0, 30.0, 30.0, 1.0, np.r_[np.zeros(30), 1.0])
    >>> e = dvh_to_eqd2(d, 10, 3.0)
    >>> round(e.max_gy, 6), round(e.inside_grid_cc, 6)
    (36.0, 1.0)
    """
    _check(n_fractions, alpha_beta_gy)
    dose, volume = cumulative_nodes(dvh)
    total = float(volume[0])
    if total <= 0 or not np.isfinite(dvh.min_gy):
        return DVH(
            dvh.volume_cc, dvh.outside_grid_cc, dvh.min_gy, dvh.mean_gy, dvh.max_gy,
            dvh.bin_width_gy, np.zeros(0),
        )  # fmt: skip
    mapped = eqd2_gy(dose, n_fractions, alpha_beta_gy)
    w = dvh.bin_width_gy
    check_bins(float(mapped[-1]), w)
    n_bins = int(np.floor(mapped[-1] / w)) + 1
    new_edges = np.arange(n_bins + 1) * w
    cum = np.interp(new_edges, mapped, volume, left=total, right=0.0)
    diff = -np.diff(cum)
    centres = (np.arange(len(dvh.differential_cc)) + 0.5) * w
    second = np.sum(dvh.differential_cc * (centres**2 + w * w / 12.0)) / total
    mean_phys = dvh.mean_gy
    mean_eqd2 = (second / n_fractions + alpha_beta_gy * mean_phys) / (
        2.0 + alpha_beta_gy
    )
    return DVH(
        volume_cc=dvh.volume_cc,
        outside_grid_cc=dvh.outside_grid_cc,
        min_gy=float(mapped[0]),
        mean_gy=float(mean_eqd2),
        max_gy=float(mapped[-1]),
        bin_width_gy=w,
        differential_cc=diff,
    )
