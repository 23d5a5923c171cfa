"""Cohorts simulated from the LKB model with known parameters.

Each patient gets a fractionation schedule (mixed conventional and
hypofractionated), and
an organ DVH made of a high-dose part (a Gaussian around a fraction of the prescription)
and a low-dose bath (an exponential), on 0.5-Gy bins shared by all patients. Each DVH is
scaled so that its gEUD under the true model lies log-normally around TD50, which gives
NTCPs across the whole 0-1 range; the outcome is a Bernoulli draw of the true NTCP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from etl.dose.dvh import tail_volumes
from ntcp.geud import DVHSet, eqd2_gy, geud_gy

__all__ = ["DEFAULT_SCHEDULES", "SimulatedCohort", "simulate_lkb_cohort"]

FloatArray = NDArray[np.float64]

#: (number of fractions, probability) of the default mixed fractionation.
DEFAULT_SCHEDULES: tuple[tuple[int, float], ...] = (
    (5, 0.15),
    (15, 0.2),
    (20, 0.2),
    (30, 0.3),
    (35, 0.15),
)

_BIN_GY = 0.5
_NEAR_MAX_VOLUME = 1e-3


@dataclass(frozen=True)
class SimulatedCohort:
    """A simulated cohort and its truth."""

    dvhs: DVHSet
    outcome: NDArray[np.int64]
    true_ntcp: FloatArray
    true_geud_gy: FloatArray


def simulate_lkb_cohort(
    n_patients: int,
    td50_gy: float,
    m: float,
    n: float,
    *,
    alpha_beta_gy: float | None = None,
    schedules: tuple[tuple[int, float], ...] = DEFAULT_SCHEDULES,
    geud_spread: float = 0.3,
    seed: int | None = None,
) -> SimulatedCohort:
    """Draw a cohort whose outcomes follow LKB with the given parameters.

    Parameters
    ----------
    n_patients : int
        Cohort size.
    td50_gy, m, n : float
        True LKB parameters.
    alpha_beta_gy : float or None
        If given, the truth acts on per-bin EQD2 (each patient's fractions);
        otherwise on
        physical dose.
    schedules : tuple of (int, float)
        Numbers of fractions and their probabilities.
    geud_spread : float
        Standard deviation of log(gEUD / TD50) across patients.
    seed : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    SimulatedCohort
        DVHs (physical dose, with fractions), outcomes, true NTCP and true gEUD.

    Examples
    --------
    >>> c = simulate_lkb_cohort(50, 30.0, 0.3, 0.5, alpha_beta_gy=3.0, seed=0)
    >>> len(c.dvhs), c.outcome.shape
    (50, (50,))
    """
    rng = np.random.default_rng(seed)
    fx_values = np.array([s[0] for s in schedules], dtype=float)
    fx_prob = np.array([s[1] for s in schedules], dtype=float)
    nfx = rng.choice(fx_values, size=n_patients, p=fx_prob / fx_prob.sum())
    # Relative DVH shapes on a unit dose scale (1 = high-dose level).
    n_bins = 160
    rel = (np.arange(n_bins) + 0.5) / n_bins * 1.6
    target = td50_gy * np.exp(rng.normal(0.0, geud_spread, n_patients))
    cap_gy = _max_dose_cap_gy(nfx)
    shape = np.empty((n_patients, n_bins))
    scale = np.empty(n_patients)
    todo = np.arange(n_patients)
    for attempt in range(60):
        k = todo.size
        shape[todo] = _draw_shapes(rng, rel, k)
        scale[todo] = _solve_scale(
            rel, shape[todo], nfx[todo], n, alpha_beta_gy, target[todo]
        )
        top = _top_rel(rel, shape[todo]) * scale[todo]
        over = top > cap_gy[todo]
        if attempt == 59:  # noqa: PLR2004
            scale[todo[over]] = cap_gy[todo[over]] / _top_rel(rel, shape[todo[over]])
        todo = todo[over]
        if todo.size == 0:
            break
    dose_rel = rel[None, :] * scale[:, None]
    # Re-bin onto a common 0.5-Gy grid.
    top_gy = float(dose_rel.max()) + _BIN_GY
    edges = np.arange(0.0, top_gy + _BIN_GY, _BIN_GY, dtype=float)
    centres = 0.5 * (edges[:-1] + edges[1:])
    vol = np.zeros((n_patients, centres.size))
    bins = np.clip(
        np.searchsorted(edges, dose_rel, side="right") - 1, 0, centres.size - 1
    )
    rows = np.repeat(np.arange(n_patients), n_bins)
    np.add.at(vol, (rows, bins.ravel()), shape.ravel())
    used = int(np.flatnonzero(vol.any(axis=0)).max()) + 1
    vol = vol[:, :used]
    dose = np.broadcast_to(centres[:used], vol.shape).copy()
    dvhs = DVHSet(dose, vol, nfx.astype(float))
    eff = dvhs.dose_matrix(alpha_beta_gy)
    g = np.asarray(geud_gy(eff, vol, n), dtype=float)
    p = np.asarray(ndtr((g - td50_gy) / (m * td50_gy)), dtype=float)
    y = (rng.uniform(size=n_patients) < p).astype(np.int64)
    return SimulatedCohort(dvhs, y, p, g)


def _draw_shapes(rng: np.random.Generator, rel: FloatArray, k: int) -> FloatArray:
    """High-dose Gaussian plus low-dose exponential bath, normalised to volume 1."""
    f_high = rng.uniform(0.05, 0.7, k)[:, None]
    mu_high = rng.uniform(0.6, 1.0, k)[:, None]
    bath = rng.uniform(0.05, 0.35, k)[:, None]
    high = np.exp(-0.5 * ((rel - mu_high) / (0.08 * mu_high)) ** 2)
    low = np.exp(-rel / bath)
    shape = f_high * high / high.sum(axis=1, keepdims=True) + (
        1 - f_high
    ) * low / low.sum(axis=1, keepdims=True)
    return np.asarray(shape / shape.sum(axis=1, keepdims=True))


def _top_rel(rel: FloatArray, shape: FloatArray) -> FloatArray:
    """Relative dose above which 0.1% of the volume lies (the near-maximum dose)."""
    tail = tail_volumes(shape)
    idx = np.argmax(tail < _NEAR_MAX_VOLUME, axis=1)
    return np.asarray(rel[np.maximum(idx - 1, 0)])


def _max_dose_cap_gy(nfx: FloatArray) -> FloatArray:
    """Physical dose whose EQD2 (alpha/beta 3 Gy) is 85 Gy: a realistic maximum."""
    # Solve D^2/N + 3 D - 85 * 5 = 0 for D.
    return np.asarray(nfx * (-3.0 + np.sqrt(9.0 + 4.0 * 425.0 / nfx)) / 2.0)


def _solve_scale(  # noqa: PLR0917
    rel: FloatArray,
    shape: FloatArray,
    nfx: FloatArray,
    n: float,
    alpha_beta_gy: float | None,
    target_gy: FloatArray,
) -> FloatArray:
    """Physical dose scales at which the gEUD of each shape equals ``target_gy``."""
    rel2 = np.broadcast_to(rel, shape.shape)
    base = np.asarray(geud_gy(rel2, shape, n), dtype=float)
    if alpha_beta_gy is None:
        return np.asarray(target_gy / base)
    # EQD2 gEUD increases monotonically with the scale: bisection on log scale.
    lo = np.full(shape.shape[0], 1e-3)
    hi = np.full(shape.shape[0], 1e4)
    for _ in range(60):
        mid = np.sqrt(lo * hi)
        g = np.asarray(
            geud_gy(eqd2_gy(rel2 * mid[:, None], nfx, alpha_beta_gy), shape, n),
            dtype=float,
        )
        below = g < target_gy
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return np.asarray(np.sqrt(lo * hi))
