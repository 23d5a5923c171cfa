"""One side of an LKB parameter's 95 % profile-likelihood interval.

:func:`profile_side` walks out from the maximum-likelihood estimate in the log of
parameter ``j`` (the other free parameters re-maximised at each point by projected
Newton, :func:`ntcp._lkb_likelihood.newton_maximise`), doubling the step until the
profile log-likelihood falls below the maximum minus :data:`DROP` (1.92, half the
95 % chi-square quantile of one degree of freedom), then finds the crossing with
``brentq``. While bracketing only the sign is needed, so a maximisation stops once
the profile is known to lie above the target; every ``brentq`` evaluation is a full
maximisation. ``None`` means the interval is open on that side within the search
bounds (:data:`ntcp._lkb_likelihood.LOG_BOUNDS`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.stats import chi2

from ntcp._lkb_likelihood import (
    LOG_BOUNDS,
    FloatArray,
    LkbLikelihood,
    NewtonResult,
    newton_maximise,
)

__all__ = ["DROP", "MIN_RELATIVE_SPREAD", "profile_side"]

#: Log-likelihood drop of a 95 % profile interval.
DROP = float(chi2.ppf(0.95, 1) / 2.0)
#: Spreads and distances below this (relative) count as none.
MIN_RELATIVE_SPREAD = 1e-9


def profile_side(
    lik: LkbLikelihood, mle: NewtonResult, free: NDArray[np.bool_], j: int, side: float
) -> float | None:
    """Bound of the profile interval of parameter ``j`` on one side, or None if open."""
    target = mle.loglik - DROP
    others = free.copy()
    others[j] = False
    oidx = np.flatnonzero(others)
    fidx = np.flatnonzero(free)
    info = -mle.hess[np.ix_(fidx, fidx)]
    try:
        cov = np.linalg.inv(info)
        k = int(np.searchsorted(fidx, j))
        se = float(np.sqrt(cov[k, k]))
    except (np.linalg.LinAlgError, ValueError):
        se = 0.1
    # Linear response of the other log-parameters to a move of parameter j.
    if oidx.size:
        h_oo = -mle.hess[np.ix_(oidx, oidx)]
        h_oj = -mle.hess[oidx, j]
        try:
            slope = -np.linalg.solve(h_oo, h_oj)
        except np.linalg.LinAlgError:
            slope = np.zeros(oidx.size)
    else:
        slope = np.zeros(0)
    room = (
        (LOG_BOUNDS[j, 1] - mle.phi[j]) if side > 0 else (mle.phi[j] - LOG_BOUNDS[j, 0])
    )
    if room <= MIN_RELATIVE_SPREAD:
        return None
    solved: list[tuple[float, FloatArray]] = [(0.0, mle.phi)]

    def profile(d: float, sign_only: bool = False) -> float:
        """Profile log-likelihood minus the target at distance ``d`` from the MLE.

        With ``sign_only`` the maximisation stops once the target is reached: the
        returned value is then a non-negative lower bound (only its sign is exact).
        """
        near_d, near_phi = min(solved, key=lambda item: abs(item[0] - d))
        phi0 = near_phi.copy()
        phi0[j] = mle.phi[j] + side * d
        if oidx.size:
            phi0[oidx] = near_phi[oidx] + slope * side * (d - near_d)
            res = newton_maximise(
                lik.derivatives,
                phi0,
                others,
                stop_above=target if sign_only else None,
            )
            if not res.reached:
                solved.append((d, res.phi))
            return res.loglik - target
        return lik.derivatives(phi0)[0] - target

    step = float(np.clip(1.96 * se if np.isfinite(se) and se > 0 else 0.1, 1e-3, 1.0))
    inner = 0.0
    d = min(step, room)
    for _ in range(40):
        value = profile(d, sign_only=True)
        if value < 0:
            break
        if d >= room - 1e-12:
            return None
        inner = d
        d = min(d * 2.0, room)
    else:
        return None
    root = brentq(profile, inner, d, xtol=1e-8, rtol=1e-10)
    return float(np.exp(mle.phi[j] + side * root))
