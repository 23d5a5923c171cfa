r"""Lyman-Kutcher-Burman NTCP model fitted by maximum likelihood.

.. math::

    \mathrm{NTCP} = \Phi\!\left(\frac{\mathrm{gEUD}(n) - TD_{50}}{m\,TD_{50}}\right),
    \qquad \mathrm{gEUD}(n) = \Big(\sum_i v_i D_i^{1/n}\Big)^n

The dose is the physical dose, or the per-bin EQD2 with the patient's own number of
fractions when ``alpha_beta_gy`` is given. Parameters are estimated by maximum
likelihood (damped Newton with the analytic gradient and Hessian on the
log-parameters) and each free
parameter gets a 95% profile-likelihood interval: the values where the log-likelihood,
re-maximised over the other parameters, has dropped by :math:`\chi^2_{1,0.95}/2 = 1.92`.

References
----------
Lyman JT. Complication probability as assessed from dose-volume histograms. Radiat Res
Suppl 1985;8:S13-S19.
Kutcher GJ, Burman C. Calculation of complication probability factors for non-uniform
normal tissue irradiation: the effective volume method. Int J Radiat Oncol Biol Phys
1989;16:1623-1630.
Venzon DJ, Moolgavkar SH. A method for computing profile-likelihood-based confidence
intervals. Appl Stat 1988;37:87-94.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr
from sklearn.base import BaseEstimator

from ntcp._lkb_likelihood import (
    LOG_BOUNDS,
    LkbLikelihood,
    NewtonResult,
    newton_maximise,
)
from ntcp._lkb_profile import DROP as _DROP
from ntcp._lkb_profile import MIN_RELATIVE_SPREAD as _MIN_RELATIVE_SPREAD
from ntcp._lkb_profile import profile_side as _profile_side
from ntcp.errors import (
    BoundaryEstimateWarning,
    NonIdentifiableError,
    NonIdentifiableWarning,
    OpenProfileIntervalWarning,
)
from ntcp.geud import DEFAULT_VOLUME_TOL, DVHSet, GeudKernel, geud_gy
from ntcp.outcome import check_binary_outcome

__all__ = ["PARAMETER_NAMES", "LKBModel"]

FloatArray = NDArray[np.float64]

#: Names of the LKB parameters, in the order used internally.
PARAMETER_NAMES = ("td50_gy", "m", "n")

_N_START_GRID = (0.05, 0.15, 0.4, 1.0, 3.0)


class LKBModel(BaseEstimator):  # type: ignore[misc]
    """LKB NTCP model with profile-likelihood intervals (scikit-learn estimator API).

    Parameters
    ----------
    fix_n : float or None
        Fix the volume parameter ``n`` at this value; ``None`` estimates it.
    alpha_beta_gy : float or None
        Convert each bin to EQD2 with this alpha/beta (Gy) and the patient's number of
        fractions; ``None`` uses the physical dose.
    profile_ci : bool
        Compute 95% profile-likelihood intervals (skip them inside bootstraps).
    volume_tol : float
        Tolerance on the sum of each DVH's volume fractions.

    Attributes
    ----------
    td50_gy_, m_, n_ : float
        Maximum-likelihood estimates.
    ci95_ : dict
        ``{name: (lower, upper)}``; a side is ``None`` when the interval is open at the
        search bound; a fixed parameter maps to ``None``.
    loglik_ : float
        Maximised log-likelihood.
    se_ : dict
        Wald standard errors from the observed information (for reference only).
    n_patients_, n_events_ : int
        Size of the fitting data.
    summary_ : pandas.DataFrame
        One row per parameter: estimate, interval, Wald SE, whether fixed.

    Examples
    --------
    >>> from ntcp.simulate import simulate_lkb_cohort
    >>> c = simulate_lkb_cohort(400, td50_gy=30.0, m=0.3, n=0.5, seed=1)
    >>> model = LKBModel().fit(c.dvhs, c.outcome)
    >>> 20 < model.td50_gy_ < 40
    True
    """

    def __init__(
        self,
        fix_n: float | None = None,
        alpha_beta_gy: float | None = None,
        profile_ci: bool = True,
        volume_tol: float = DEFAULT_VOLUME_TOL,
    ) -> None:
        self.fix_n = fix_n
        self.alpha_beta_gy = alpha_beta_gy
        self.profile_ci = profile_ci
        self.volume_tol = volume_tol

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: DVHSet | Sequence[tuple[ArrayLike, ArrayLike]],  # noqa: N803
        y: ArrayLike,
        n_fractions: ArrayLike | None = None,
    ) -> LKBModel:
        """Fit by maximum likelihood.

        Parameters
        ----------
        X : DVHSet or sequence of (dose_gy, volume_fraction)
            Differential DVHs of the organ, physical dose at bin centres.
        y : array_like of {0, 1}
            Outcome per patient.
        n_fractions : array_like, optional
            Fractions per patient (needed with ``alpha_beta_gy`` unless ``X`` has them).

        Returns
        -------
        LKBModel
            ``self``.
        """
        dvhs = DVHSet.from_dvhs(X, n_fractions, self.volume_tol)
        n_free = 2 if self.fix_n is not None else 3
        yy = check_binary_outcome(y, len(dvhs), n_parameters=n_free)
        kernel = GeudKernel(dvhs.dose_matrix(self.alpha_beta_gy), dvhs.volume_fraction)
        lik = LkbLikelihood(kernel, yy)
        free = np.array([True, True, self.fix_n is None])
        phi0 = self._start(kernel, yy)
        mle = newton_maximise(lik.derivatives, phi0, free)
        if not mle.converged:
            # One restart from the best grid start of a different n before giving up.
            mle = newton_maximise(lik.derivatives, mle.phi, free, max_iter=500)
        self._check_mle(mle, free)
        theta = np.exp(mle.phi)
        self.td50_gy_, self.m_, self.n_ = (float(v) for v in theta)
        self.loglik_ = float(mle.loglik)
        self.n_patients_ = len(dvhs)
        self.n_events_ = int(yy.sum())
        self.converged_ = bool(mle.converged)
        self.se_ = self._wald_se(mle, free, theta)
        self.ci95_: dict[str, tuple[float | None, float | None] | None] = {}
        for j, name in enumerate(PARAMETER_NAMES):
            if not free[j]:
                self.ci95_[name] = None
            elif self.profile_ci:
                self.ci95_[name] = self._profile_interval(lik, mle, free, j)
            else:
                self.ci95_[name] = (None, None)
        self.summary_ = self._summary(free)
        return self

    def _start(self, kernel: GeudKernel, y: FloatArray) -> FloatArray:
        grid = (self.fix_n,) if self.fix_n is not None else _N_START_GRID
        best: tuple[float, FloatArray] | None = None
        spread_seen = False
        for n in grid:
            g = kernel.evaluate(float(n))[0]
            start = _probit_start(g, y)
            if start is None:
                continue
            spread_seen = True
            ll, t, m = start
            if best is None or ll > best[0]:
                best = (ll, np.log(np.array([t, m, float(n)])))
        if not spread_seen:
            raise NonIdentifiableError(
                "all patients have the same gEUD: the dose-response cannot be estimated"
            )
        if best is None:  # pragma: no cover - guarded by spread_seen
            raise NonIdentifiableError("no usable starting values")
        return np.clip(best[1], LOG_BOUNDS[:, 0], LOG_BOUNDS[:, 1])

    def _check_mle(self, mle: NewtonResult, free: NDArray[np.bool_]) -> None:
        at_low = np.isclose(mle.phi, LOG_BOUNDS[:, 0], atol=1e-6) & free
        at_high = np.isclose(mle.phi, LOG_BOUNDS[:, 1], atol=1e-6) & free
        if at_low[1]:
            raise NonIdentifiableError(
                "m runs to 0: the outcome is perfectly separated by dose; "
                "the maximum-likelihood estimate does not exist"
            )
        if at_high[0] or at_high[1]:
            raise NonIdentifiableError(
                "TD50 or m runs to its upper bound: "
                "no increasing dose-response in the data"
            )
        for j in np.flatnonzero(at_low | at_high):
            warnings.warn(
                f"{PARAMETER_NAMES[j]} estimate is at the search bound "
                f"{float(np.exp(mle.phi[j])):g}",
                BoundaryEstimateWarning,
                stacklevel=3,
            )
        interior = free & ~at_low & ~at_high
        idx = np.flatnonzero(interior)
        info = -mle.hess[np.ix_(idx, idx)]
        eig = np.linalg.eigvalsh(info)
        if eig.size and (eig[0] <= 1e-10 * max(eig[-1], 1e-300)):
            raise NonIdentifiableError(
                "flat likelihood: the observed information is singular "
                f"(eigenvalues {eig.min():.3g} .. {eig.max():.3g}); "
                "fix n or add dose spread"
            )
        if not mle.converged:
            raise NonIdentifiableError("the likelihood maximisation did not converge")

    @staticmethod
    def _wald_se(
        mle: NewtonResult, free: NDArray[np.bool_], theta: FloatArray
    ) -> dict[str, float | None]:
        idx = np.flatnonzero(free)
        out: dict[str, float | None] = dict.fromkeys(PARAMETER_NAMES)
        try:
            cov = np.linalg.inv(-mle.hess[np.ix_(idx, idx)])
        except np.linalg.LinAlgError:
            return out
        for k, j in enumerate(idx):
            var = cov[k, k]
            out[PARAMETER_NAMES[j]] = (
                float(theta[j] * np.sqrt(var)) if var > 0 else None
            )
        return out

    def _profile_interval(
        self, lik: LkbLikelihood, mle: NewtonResult, free: NDArray[np.bool_], j: int
    ) -> tuple[float | None, float | None]:
        lower = _profile_side(lik, mle, free, j, -1.0)
        upper = _profile_side(lik, mle, free, j, +1.0)
        name = PARAMETER_NAMES[j]
        if lower is None and upper is None:
            warnings.warn(
                f"{name} is not identified: its profile likelihood does not drop by "
                f"{_DROP:.2f} within the search bounds",
                NonIdentifiableWarning,
                stacklevel=3,
            )
        elif lower is None or upper is None:
            warnings.warn(
                f"the 95% profile interval of {name} is open on one side",
                OpenProfileIntervalWarning,
                stacklevel=3,
            )
        return lower, upper

    def _summary(self, free: NDArray[np.bool_]) -> pd.DataFrame:
        rows = []
        for j, name in enumerate(PARAMETER_NAMES):
            ci = self.ci95_[name]
            rows.append(
                {
                    "estimate": getattr(self, f"{name.removesuffix('_gy')}_gy_")
                    if name == "td50_gy"
                    else getattr(self, f"{name}_"),
                    "lower 95% (profile)": None if ci is None else ci[0],
                    "upper 95% (profile)": None if ci is None else ci[1],
                    "se (Wald)": self.se_[name],
                    "fixed": not bool(free[j]),
                }
            )
        return pd.DataFrame(rows, index=pd.Index(PARAMETER_NAMES, name="parameter"))

    # --------------------------------------------------------------- prediction
    def geud_gy(
        self,
        X: DVHSet | Sequence[tuple[ArrayLike, ArrayLike]],  # noqa: N803
        n_fractions: ArrayLike | None = None,
    ) -> FloatArray:
        """Return each patient's gEUD in Gy (physical or EQD2, as fitted) at ``n_``."""
        dvhs = DVHSet.from_dvhs(X, n_fractions, self.volume_tol)
        dose = dvhs.dose_matrix(self.alpha_beta_gy)
        return np.asarray(geud_gy(dose, dvhs.volume_fraction, self.n_), dtype=float)

    def predict_ntcp(
        self,
        X: DVHSet | Sequence[tuple[ArrayLike, ArrayLike]],  # noqa: N803
        n_fractions: ArrayLike | None = None,
    ) -> FloatArray:
        """NTCP of each patient."""
        g = self.geud_gy(X, n_fractions)
        return np.asarray(ndtr((g - self.td50_gy_) / (self.m_ * self.td50_gy_)))

    def predict_proba(
        self,
        X: DVHSet | Sequence[tuple[ArrayLike, ArrayLike]],  # noqa: N803
        n_fractions: ArrayLike | None = None,
    ) -> FloatArray:
        """Return P(no complication), P(complication): shape ``(patients, 2)``."""
        p = self.predict_ntcp(X, n_fractions)
        return np.column_stack((1.0 - p, p))

    def print_summary(self, file: TextIO | None = None) -> None:
        """Write a readable summary table."""
        out = file if file is not None else sys.stdout
        dose = (
            "physical dose"
            if self.alpha_beta_gy is None
            else (f"EQD2 (alpha/beta = {self.alpha_beta_gy:g} Gy)")
        )
        out.write(
            f"<ntcp.LKBModel: fitted with {self.n_patients_} patients, "
            f"{self.n_events_} events; {dose}>\n"
            f"log-likelihood = {self.loglik_:.3f}\n"
            f"{self.summary_.to_string(float_format=lambda v: f'{v:.4g}')}\n"
        )


def _probit_start(g: FloatArray, y: FloatArray) -> tuple[float, float, float] | None:
    """Probit fit of ``y`` on ``g`` (concave, Newton): (loglik, TD50, m) or None."""
    from scipy.special import log_ndtr

    mu, sd = float(g.mean()), float(g.std())
    if not sd > _MIN_RELATIVE_SPREAD * max(abs(mu), 1.0):
        return None
    x = (g - mu) / sd
    s = 2.0 * y - 1.0
    beta = np.array([float(np.clip(np.sqrt(2) * _erfinv_mean(y), -5, 5)), 0.0])
    design = np.column_stack((np.ones_like(x), x))
    ll = -np.inf
    for _ in range(60):
        z = design @ beta
        sz = s * z
        logcdf = log_ndtr(sz)
        lam = np.exp(-0.5 * sz * sz - 0.5 * np.log(2 * np.pi) - logcdf)
        grad = design.T @ (s * lam)
        w = lam * (sz + lam)
        info = (design * w[:, None]).T @ design + 1e-12 * np.eye(2)
        step = np.linalg.solve(info, grad)
        ll = float(logcdf.sum())
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-9 or abs(beta[1]) > 40:  # noqa: PLR2004
            break
    b1 = beta[1] / sd
    b0 = beta[0] - beta[1] * mu / sd
    positive = g[g > 0]
    floor = 0.5 * float(positive.min()) if positive.size else 1.0
    if b1 <= 0:
        return ll, float(np.exp(LOG_BOUNDS[0, 1]) / 10), 1.0
    t = max(-b0 / b1, floor)
    m = 1.0 / (b1 * t)
    return ll, t, float(np.clip(m, 1e-2, 10.0))


def _erfinv_mean(y: FloatArray) -> float:
    from scipy.special import erfinv

    p = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    return float(erfinv(2 * p - 1))
