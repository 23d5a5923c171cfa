r"""LKB log-likelihood with analytic gradient and Hessian; damped Newton fits.

Internal module of :mod:`ntcp.lkb`. Parameters are ``theta = (TD50, m, n)``; the
optimisers work on ``phi = log(theta)``.

.. math::

    z_p = \frac{g_p(n) - T}{m T}, \qquad
    \ell = \sum_p \log \Phi(s_p z_p), \quad s_p = 2 y_p - 1

With :math:`\lambda(t) = \varphi(t)/\Phi(t)`: :math:`\partial\ell_p/\partial z =
s_p \lambda(s_p z_p)`, :math:`\partial^2\ell_p/\partial z^2 =
-\lambda(s_p z_p)(s_p z_p + \lambda(s_p z_p))`, and the derivatives of ``z``:
:math:`z_T = -g/(mT^2)`, :math:`z_m = -z/m`, :math:`z_n = g'/(mT)`,
:math:`z_{TT} = 2g/(mT^3)`, :math:`z_{mm} = 2z/m^2`, :math:`z_{Tm} = g/(m^2T^2)`,
:math:`z_{nn} = g''/(mT)`, :math:`z_{Tn} = -g'/(mT^2)`, :math:`z_{mn} = -g'/(m^2T)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr

from ntcp.geud import GeudKernel

__all__ = ["LOG_BOUNDS", "LkbLikelihood", "NewtonResult", "newton_maximise"]

FloatArray = NDArray[np.float64]

#: Search bounds of log(TD50 / Gy), log(m), log(n).
LOG_BOUNDS = np.log(np.array([[1e-2, 1e4], [1e-3, 50.0], [1e-2, 1e2]]))

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
_TINY_MOVE = 1e-12
_GRAD_TOL = 1e-4


class LkbLikelihood:
    """Log-likelihood of the LKB model for one cohort."""

    def __init__(self, kernel: GeudKernel, y: FloatArray) -> None:
        self.kernel = kernel
        self.sign = 2.0 * np.asarray(y, dtype=float) - 1.0

    def loglik(self, theta: FloatArray) -> float:
        """Log-likelihood at natural parameters ``theta`` (no derivatives)."""
        t, m, n = theta
        g = self.kernel.evaluate(float(n))[0]
        z = (g - t) / (m * t)
        return float(np.sum(log_ndtr(self.sign * z)))

    def derivatives(self, phi: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        """Log-likelihood, gradient and Hessian with respect to ``phi = log(theta)``."""
        theta = np.exp(phi)
        t, m, n = theta
        g, g1, g2 = self.kernel.evaluate(float(n))
        z = (g - t) / (m * t)
        sz = self.sign * z
        logcdf = log_ndtr(sz)
        lam = np.exp(-0.5 * sz * sz - _LOG_SQRT_2PI - logcdf)
        l1 = self.sign * lam
        l2 = -lam * (sz + lam)
        jz = np.column_stack((-g / (m * t * t), -z / m, g1 / (m * t)))
        grad = jz.T @ l1
        hess = (jz * l2[:, None]).T @ jz
        s_g = float(l1 @ g)
        s_z = float(l1 @ z)
        s_g1 = float(l1 @ g1)
        s_g2 = float(l1 @ g2)
        h_tt = 2.0 * s_g / (m * t**3)
        h_mm = 2.0 * s_z / m**2
        h_tm = s_g / (m * m * t * t)
        h_nn = s_g2 / (m * t)
        h_tn = -s_g1 / (m * t * t)
        h_mn = -s_g1 / (m * m * t)
        hess += np.array([[h_tt, h_tm, h_tn], [h_tm, h_mm, h_mn], [h_tn, h_mn, h_nn]])
        grad_phi = theta * grad
        hess_phi = hess * np.outer(theta, theta) + np.diag(grad_phi)
        return float(logcdf.sum()), grad_phi, hess_phi


@dataclass
class NewtonResult:
    """Outcome of one constrained Newton maximisation."""

    phi: FloatArray
    loglik: float
    grad: FloatArray
    hess: FloatArray
    converged: bool
    iterations: int
    reached: bool = False


def newton_maximise(
    fun: Callable[[FloatArray], tuple[float, FloatArray, FloatArray]],
    phi0: FloatArray,
    free: NDArray[np.bool_],
    *,
    bounds: FloatArray = LOG_BOUNDS,
    max_iter: int = 200,
    tol: float = 1e-10,
    stop_above: float | None = None,
) -> NewtonResult:
    """Maximise ``fun`` over the ``free`` coordinates by damped Newton steps.

    The Hessian is regularised (Levenberg) when not negative definite, steps are capped
    at 1 in log-parameter space, halved until the objective does not decrease, and
    clipped to ``bounds``; a coordinate resting on its bound with the gradient
    pointing outwards is held there (projected Newton). Convergence: Newton decrement
    of the other coordinates below ``tol``.

    With ``stop_above``, the search stops as soon as the objective reaches that value
    (``reached`` is then true): the maximum is then known to be at least
    ``stop_above``, which is all a caller bracketing a level crossing needs.
    """
    phi = np.clip(np.asarray(phi0, dtype=float).copy(), bounds[:, 0], bounds[:, 1])
    f, g, h = fun(phi)
    free_idx = np.flatnonzero(free)
    converged = False
    reached = stop_above is not None and f >= stop_above
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        if reached:
            break
        # Projected Newton: a coordinate on its bound whose gradient points outwards
        # is held there for this step (its KKT condition holds); the step and the
        # convergence test use the other coordinates only.
        pinned = ((phi <= bounds[:, 0]) & (g < 0)) | ((phi >= bounds[:, 1]) & (g > 0))
        idx = free_idx[~pinned[free_idx]]
        if idx.size == 0:
            converged = True
            break
        gf = g[idx]
        hf = -h[np.ix_(idx, idx)]
        step = _regularised_solve(hf, gf)
        scale = max(1.0, float(np.max(np.abs(step))))
        step = step / scale
        decrement = float(gf @ step)
        if decrement < tol and scale == 1.0:
            converged = True
            break
        accepted = False
        alpha = 1.0
        for _ in range(40):
            trial = phi.copy()
            trial[idx] = np.clip(
                phi[idx] + alpha * step, bounds[idx, 0], bounds[idx, 1]
            )
            f_new, g_new, h_new = fun(trial)
            if np.isfinite(f_new) and f_new >= f - 1e-12 * max(1.0, abs(f)):
                accepted = True
                break
            alpha *= 0.5
        if not accepted:
            break
        moved = float(np.max(np.abs(trial - phi)))
        improvement = f_new - f
        phi, f, g, h = trial, f_new, g_new, h_new
        if stop_above is not None and f >= stop_above:
            reached = True
            break
        if moved < _TINY_MOVE or (0 <= improvement < tol * 1e-3 and alpha < 1.0):
            converged = float(np.max(np.abs(g[idx]))) < _GRAD_TOL or moved < _TINY_MOVE
            break
    return NewtonResult(phi, f, g, h, converged, it, reached)


def _regularised_solve(info: FloatArray, grad: FloatArray) -> FloatArray:
    """Solve ``(info + lam I) x = grad`` with lam >= 0 making it definite."""
    lam = 0.0
    diag_scale = max(float(np.max(np.abs(np.diag(info)))) if info.size else 1.0, 1e-12)
    eye = np.eye(info.shape[0])
    for _ in range(60):
        try:
            chol = np.linalg.cholesky(info + lam * eye)
        except np.linalg.LinAlgError:
            lam = max(lam * 10.0, 1e-8 * diag_scale)
            continue
        y = np.linalg.solve(chol, grad)
        return np.asarray(np.linalg.solve(chol.T, y))
    return np.asarray(grad / diag_scale)
