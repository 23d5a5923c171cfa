r"""Profile-likelihood confidence intervals for logistic-regression coefficients.

For coefficient :math:`\beta_j` the profile log-likelihood is the log-likelihood
re-maximised over the other coefficients with :math:`\beta_j` held fixed (a logistic
fit with offset :math:`\beta_j x_j`):

.. math::

    \ell_p(b) = \max_{\beta_{-j}} \ell(\beta_{-j}, \beta_j = b), \qquad
    \mathrm{CI} = \{b : \ell_p(b) \ge \hat\ell - \chi^2_{1,0.95}/2\}

The two ends are found by bracketing outwards from the estimate in steps of the
Wald standard error and solving with Brent's method (Venzon & Moolgavkar 1988), as
for the LKB parameters in :mod:`ntcp.lkb`. Unlike Wald intervals they are not
symmetric and respect the curvature of the likelihood, which matters with few events.
An end is ``None`` (open) when the profile does not drop far enough within 50
standard errors, which happens under quasi-separation.

References
----------
Venzon DJ, Moolgavkar SH. A method for computing profile-likelihood-based confidence
intervals. Appl Stat 1988;37:87-94.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.special import expit, log_expit
from scipy.stats import chi2

from ntcp.errors import OpenProfileIntervalWarning

__all__ = ["offset_fit", "profile_intervals"]

FloatArray = NDArray[np.float64]

_MAX_SE = 50.0
_STEP_TOL = 1e-10


def offset_fit(
    design: FloatArray, y: FloatArray, offset: FloatArray, start: FloatArray
) -> tuple[float, FloatArray]:
    """Maximise the logistic log-likelihood with a fixed offset (damped Newton).

    Parameters
    ----------
    design : ndarray, shape (patients, k)
        Columns estimated (may be empty).
    y : ndarray
        Outcome 0/1.
    offset : ndarray
        Fixed part of the linear predictor.
    start : ndarray, shape (k,)
        Starting coefficients.

    Returns
    -------
    tuple
        (maximised log-likelihood, coefficients).

    Examples
    --------
    >>> x = np.ones((4, 1)); y = np.array([0.0, 1.0, 1.0, 1.0])
    >>> ll, b = offset_fit(x, y, np.zeros(4), np.zeros(1))
    >>> round(float(b[0]), 4) == round(float(np.log(3.0)), 4)
    True
    """
    s = 2.0 * y - 1.0
    beta = np.asarray(start, dtype=float).copy()
    obj = float(log_expit(s * (offset + design @ beta)).sum())
    if design.shape[1] == 0:
        return obj, beta
    for _ in range(100):
        p = expit(offset + design @ beta)
        grad = design.T @ (y - p)
        info = (design * (p * (1 - p))[:, None]).T @ design
        step = np.linalg.lstsq(info, grad, rcond=None)[0]
        t = 1.0
        for _ in range(40):
            trial = beta + t * step
            obj_t = float(log_expit(s * (offset + design @ trial)).sum())
            if obj_t >= obj - 1e-12 * max(1.0, abs(obj)):
                break
            t *= 0.5
        beta, obj = trial, obj_t
        if float(np.max(np.abs(t * step))) < _STEP_TOL:
            break
    return obj, beta


def profile_intervals(
    design: FloatArray,
    y: FloatArray,
    beta: FloatArray,
    loglik: float,
    names: Sequence[str],
    *,
    se: FloatArray,
    level: float = 0.95,
) -> dict[str, tuple[float | None, float | None]]:
    """Profile-likelihood intervals of every coefficient of a logistic fit.

    Parameters
    ----------
    design : ndarray, shape (patients, p)
        Design matrix including the intercept column.
    y : ndarray
        Outcome 0/1.
    beta : ndarray, shape (p,)
        Maximum-likelihood estimate (unpenalised).
    loglik : float
        Log-likelihood at ``beta``.
    names : sequence of str
        Parameter names, in the order of the columns.
    se : ndarray, shape (p,)
        Wald standard errors (set the search step only).
    level : float
        Coverage (0.95: a drop of 1.92).

    Returns
    -------
    dict
        ``{name: (lower, upper)}``; an end is ``None`` when open.
    """
    drop = float(chi2.ppf(level, 1) / 2.0)
    target = loglik - drop
    out: dict[str, tuple[float | None, float | None]] = {}
    for j, name in enumerate(names):
        others = np.delete(design, j, axis=1)
        start = np.delete(beta, j)
        step = float(se[j]) if np.isfinite(se[j]) and se[j] > 0 else 1.0
        ends = tuple(
            _side(design[:, j], others, y, beta[j], start, target, step, sign)
            for sign in (-1.0, 1.0)
        )
        if ends[0] is None or ends[1] is None:
            warnings.warn(
                f"the {level:.0%} profile interval of {name} is open "
                f"(the likelihood does not drop by {drop:.2f} within "
                f"{_MAX_SE:g} standard errors)",
                OpenProfileIntervalWarning,
                stacklevel=2,
            )
        out[str(name)] = (ends[0], ends[1])
    return out


def _side(  # noqa: PLR0917
    xj: FloatArray,
    others: FloatArray,
    y: FloatArray,
    bj: float,
    start: FloatArray,
    target: float,
    step: float,
    sign: float,
) -> float | None:
    warm = [start]

    def excess(d: float) -> float:
        ll, b = offset_fit(others, y, (bj + sign * d) * xj, warm[-1])
        warm.append(b)
        return ll - target

    inner, d = 0.0, step
    while d <= _MAX_SE * step:
        if excess(d) < 0:
            warm.append(warm[-2] if len(warm) > 1 else start)
            root = brentq(excess, inner, d, xtol=1e-10 * max(1.0, step), rtol=1e-12)
            return float(bj + sign * root)
        inner, d = d, d * 2.0
    return None
