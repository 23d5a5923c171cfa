r"""DVH sets, per-bin EQD2 and a vectorised gEUD with derivatives in ``n``.

A :class:`DVHSet` holds the differential DVHs of many patients as one padded
(patients x bins) matrix, built and validated once. :class:`GeudKernel` compresses that
matrix to the distinct dose values it contains (one sparse patients x values matrix of
volumes) so that each evaluation of gEUD and of its first two derivatives with respect
to the volume parameter ``n`` costs a few exponentials of the distinct doses and one
sparse matrix product, whatever the number of patients.

.. math::

    \mathrm{gEUD}_p(n) = \Big(\sum_i v_{pi} D_{pi}^{1/n}\Big)^n, \qquad
    \mathrm{EQD2} = D\,\frac{d + \alpha/\beta}{2 + \alpha/\beta},\; d = D/N_{fx}

References
----------
Niemierko A. A generalized concept of equivalent uniform dose (EUD).
Med Phys 1999;26:1100.
Withers HR, Thames HD, Peters LJ. A new isoeffect curve for change in dose per fraction.
Radiother Oncol 1983;1:187-191.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from etl.dose.radiobiology import eqd2_gy as etl_eqd2_gy
from etl.dose.radiobiology import geud_gy as etl_geud_gy
from ntcp.errors import DvhValidationError, MissingFractionsError

__all__ = [
    "DEFAULT_VOLUME_TOL",
    "DVHSet",
    "GeudKernel",
    "dvh_problems",
    "eqd2_gy",
    "geud_gy",
]

FloatArray = NDArray[np.float64]

#: Default tolerance on the sum of the volume fractions of one DVH.
DEFAULT_VOLUME_TOL = 0.01

_UNDERFLOW = 1e-250


def dvh_problems(
    dose_gy: ArrayLike,
    volume_fraction: ArrayLike,
    volume_tol: float = DEFAULT_VOLUME_TOL,
) -> list[str]:
    """List what is wrong with one differential DVH (empty list: nothing).

    Parameters
    ----------
    dose_gy : array_like
        Bin-centre doses in Gy.
    volume_fraction : array_like
        Fraction of the organ volume in each bin.
    volume_tol : float
        Allowed absolute deviation of the sum of the volume fractions from 1.

    Returns
    -------
    list of str
        Human-readable problems; the caller chooses to ignore, warn or raise.

    Examples
    --------
    >>> dvh_problems([10.0, -1.0], [0.5, 0.5])
    ['negative dose (-1 Gy)']
    """
    dose = np.asarray(dose_gy, dtype=float)
    vol = np.asarray(volume_fraction, dtype=float)
    problems: list[str] = []
    if dose.ndim != 1 or vol.ndim != 1 or dose.shape != vol.shape:
        return [
            f"dose and volume must be 1-D of equal length: {dose.shape}, {vol.shape}"
        ]
    if dose.size == 0:
        return ["empty DVH"]
    if not (np.all(np.isfinite(dose)) and np.all(np.isfinite(vol))):
        problems.append("non-finite dose or volume")
        return problems
    if np.any(dose < 0):
        problems.append(f"negative dose ({dose.min():g} Gy)")
    if np.any(vol < 0):
        problems.append(f"negative volume fraction ({vol.min():g})")
    total = float(vol.sum())
    if abs(total - 1.0) > volume_tol:
        problems.append(
            f"volume fractions sum to {total:.4f}, not 1 (tolerance {volume_tol:g})"
        )
    return problems


def eqd2_gy(
    dose_gy: ArrayLike, n_fractions: ArrayLike, alpha_beta_gy: float
) -> FloatArray:
    """Equivalent dose in 2-Gy fractions, bin by bin.

    Parameters
    ----------
    dose_gy : array_like
        Physical total dose per bin in Gy, shape ``(patients, bins)`` or ``(bins,)``.
    n_fractions : array_like
        Number of fractions per patient, shape ``(patients,)`` or scalar.
    alpha_beta_gy : float
        Alpha/beta ratio in Gy.

    Returns
    -------
    numpy.ndarray
        EQD2 in Gy, same shape as ``dose_gy``.

    Examples
    --------
    >>> float(eqd2_gy(30.0, 5, 3.0)[()])
    54.0
    """
    dose = np.asarray(dose_gy, dtype=float)
    nfx = np.asarray(n_fractions, dtype=float)
    if dose.ndim == 2 and nfx.ndim == 1:  # noqa: PLR2004
        nfx = nfx[:, None]  # one fraction number per patient row
    return etl_eqd2_gy(dose, nfx, alpha_beta_gy)


def geud_gy(dose_gy: ArrayLike, volume_fraction: ArrayLike, n: float) -> FloatArray:
    """Generalised equivalent uniform dose per row.

    Computed by :func:`etl.dose.radiobiology.geud_gy`.

    The volume fractions are used as given (not renormalised).

    Parameters
    ----------
    dose_gy, volume_fraction : array_like
        Bin doses (Gy) and volume fractions, shape ``(bins,)`` or ``(patients, bins)``.
    n : float
        Volume parameter (``a = 1/n``).

    Returns
    -------
    numpy.ndarray
        gEUD in Gy per row.

    Examples
    --------
    >>> float(geud_gy([10.0, 20.0], [0.5, 0.5], 1.0))
    15.0
    """
    out = etl_geud_gy(dose_gy, volume_fraction, n=n, normalise=False)
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class DVHSet:
    """Differential DVHs of several patients as one padded matrix.

    Attributes
    ----------
    dose_gy : numpy.ndarray
        Bin-centre physical doses, shape ``(patients, bins)``; padding bins hold 0.
    volume_fraction : numpy.ndarray
        Volume fractions, same shape; padding bins hold 0.
    n_fractions : numpy.ndarray
        Number of fractions per patient; ``nan`` where unknown.
    """

    dose_gy: FloatArray
    volume_fraction: FloatArray
    n_fractions: FloatArray

    @classmethod
    def from_dvhs(
        cls,
        dvhs: Sequence[tuple[ArrayLike, ArrayLike]] | DVHSet,
        n_fractions: ArrayLike | None = None,
        volume_tol: float = DEFAULT_VOLUME_TOL,
    ) -> DVHSet:
        """Validate and pad a sequence of ``(dose_gy, volume_fraction)`` pairs.

        Raises
        ------
        DvhValidationError
            Naming the first patient (0-based index) whose DVH is unusable.
        """
        if isinstance(dvhs, DVHSet):
            if n_fractions is None:
                return dvhs
            return cls(
                dvhs.dose_gy,
                dvhs.volume_fraction,
                _as_fractions(n_fractions, len(dvhs)),
            )
        n_pat = len(dvhs)
        if n_pat == 0:
            raise DvhValidationError("no DVHs given")
        pairs = [
            (np.asarray(d, dtype=float), np.asarray(v, dtype=float)) for d, v in dvhs
        ]
        for i, (d, v) in enumerate(pairs):
            problems = dvh_problems(d, v, volume_tol)
            if problems:
                raise DvhValidationError(f"patient {i}: " + "; ".join(problems))
        width = max(d.size for d, _ in pairs)
        dose = np.zeros((n_pat, width))
        vol = np.zeros((n_pat, width))
        for i, (d, v) in enumerate(pairs):
            dose[i, : d.size] = d
            vol[i, : v.size] = v
        nfx = (
            np.full(n_pat, np.nan)
            if n_fractions is None
            else _as_fractions(n_fractions, n_pat)
        )
        return cls(dose, vol, nfx)

    def __len__(self) -> int:
        return int(self.dose_gy.shape[0])

    def take(self, index: ArrayLike) -> DVHSet:
        """Return the patients at ``index`` (a bootstrap sample may repeat them)."""
        idx = np.asarray(index)
        return DVHSet(
            self.dose_gy[idx], self.volume_fraction[idx], self.n_fractions[idx]
        )

    def dose_matrix(self, alpha_beta_gy: float | None = None) -> FloatArray:
        """Physical dose, or per-bin EQD2 when ``alpha_beta_gy`` is given.

        Raises
        ------
        MissingFractionsError
            If EQD2 is asked and some patient has no (or a non-positive) fraction count.
        """
        if alpha_beta_gy is None:
            return self.dose_gy
        bad = ~(np.isfinite(self.n_fractions) & (self.n_fractions > 0))
        if np.any(bad):
            where = np.flatnonzero(bad)
            raise MissingFractionsError(
                f"EQD2 needs the number of fractions; missing for {where.size} "
                f"patient(s), "
                f"first at index {int(where[0])}"
            )
        return eqd2_gy(self.dose_gy, self.n_fractions, alpha_beta_gy)


def _as_fractions(n_fractions: ArrayLike, n_pat: int) -> FloatArray:
    nfx = np.asarray(n_fractions, dtype=float)
    if nfx.ndim == 0:
        nfx = np.full(n_pat, float(nfx))
    if nfx.shape != (n_pat,):
        raise DvhValidationError(
            f"n_fractions has shape {nfx.shape}, expected ({n_pat},)"
        )
    return nfx


class GeudKernel:
    r"""Fast gEUD and its derivatives in ``n`` for a fixed dose matrix.

    Parameters
    ----------
    dose_gy : numpy.ndarray
        Dose per bin (physical or EQD2), shape ``(patients, bins)``.
    volume_fraction : numpy.ndarray
        Volume fraction per bin, same shape.

    Notes
    -----
    With :math:`\tilde u = u/u_{max}` the distinct positive doses scaled by
    their maximum,
    :math:`w_k \propto v\,\tilde u_k^{1/n}` and :math:`\ell = \log\tilde u`:
    :math:`\log g = \log u_{max} + n \log s_0`,
    :math:`\partial_n \log g = \log s_0 - E_w[\ell]/n` and
    :math:`\partial^2_n \log g = \mathrm{Var}_w[\ell]/n^3`.
    """

    def __init__(self, dose_gy: FloatArray, volume_fraction: FloatArray) -> None:
        dose = np.asarray(dose_gy, dtype=float)
        vol = np.asarray(volume_fraction, dtype=float)
        self._dose = dose
        self._vol = vol
        mask = (vol > 0) & (dose > 0)
        rows, cols = np.nonzero(mask)
        values, inverse = np.unique(dose[rows, cols], return_inverse=True)
        self.n_patients = int(dose.shape[0])
        self.n_values = int(values.size)
        self._has_dose = np.zeros(self.n_patients, dtype=bool)
        self._has_dose[rows] = True
        if values.size == 0:
            self._log_umax = 0.0
            self._log_u = np.zeros(0)
        else:
            self._log_umax = float(np.log(values[-1]))
            self._log_u = np.log(values) - self._log_umax
        self._matrix = sp.csr_matrix(
            (vol[rows, cols], (rows, inverse.ravel())),
            shape=(self.n_patients, self.n_values),
        )
        self._cache_n: float | None = None
        self._cache: tuple[FloatArray, FloatArray, FloatArray] = (
            np.zeros(0),
            np.zeros(0),
            np.zeros(0),
        )

    def evaluate(self, n: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Return gEUD (Gy) and its first and second derivatives in ``n``."""
        if self._cache_n == n:
            return self._cache
        a = 1.0 / n
        lu = self._log_u
        e = np.exp(a * lu)
        basis = np.column_stack((e, e * lu, e * lu * lu))
        sums = np.asarray(self._matrix @ basis)
        s0, s1, s2 = sums[:, 0].copy(), sums[:, 1].copy(), sums[:, 2].copy()
        ok = s0 > 0
        log_s0 = np.log(np.where(ok, s0, 1.0))
        low = self._has_dose & (s0 < _UNDERFLOW)
        if np.any(low):
            self._rescue(np.flatnonzero(low), a, s0, s1, s2, log_s0)
            ok = ok | low
        safe = np.where(s0 > 0, s0, 1.0)
        mean_l = s1 / safe
        var_l = np.maximum(s2 / safe - mean_l**2, 0.0)
        log_g = self._log_umax + n * log_s0
        h1 = log_s0 - mean_l / n
        h2 = var_l / n**3
        g = np.where(ok, np.exp(log_g), 0.0)
        g1 = np.where(ok, g * h1, 0.0)
        g2 = np.where(ok, g * (h2 + h1 * h1), 0.0)
        self._cache_n = n
        self._cache = (g, g1, g2)
        return self._cache

    def _rescue(  # noqa: PLR0917
        self,
        rows: NDArray[np.intp],
        a: float,
        s0: FloatArray,
        s1: FloatArray,
        s2: FloatArray,
        log_s0: FloatArray,
    ) -> None:
        """Recompute rows whose sums underflow, scaling by each row's own maximum.

        Fills ``s0, s1, s2`` in place so that ``s1/s0`` and ``s2/s0`` are the weighted
        moments of the globally scaled log-dose, and ``log_s0`` with the logarithm of
        the
        globally scaled sum (which itself is not representable).
        """
        dose = self._dose[rows]
        vol = self._vol[rows]
        pos = (dose > 0) & (vol > 0)
        row_max = np.max(np.where(pos, dose, 0.0), axis=1)
        shift = np.log(row_max) - self._log_umax
        lu = np.where(
            pos, np.log(np.where(pos, dose, 1.0)) - np.log(row_max)[:, None], 0.0
        )
        e = np.where(pos, vol * np.exp(a * lu), 0.0)
        s_row = e.sum(axis=1)
        m = (e * lu).sum(axis=1) / s_row
        v = (e * lu * lu).sum(axis=1) / s_row - m**2
        m_global = m + shift
        s0[rows] = 1.0
        s1[rows] = m_global
        s2[rows] = v + m_global**2
        log_s0[rows] = np.log(s_row) + a * shift
