r"""Logistic NTCP models: one dose metric (or gEUD) with optional clinical covariates.

.. math::

    \mathrm{NTCP} = \frac{1}{1 + e^{-(\beta_0 + \beta_1 x_1 + \dots + \beta_k x_k)}}

Fitted by Newton-Raphson (IRLS) on the exact log-likelihood, unpenalised by default (the
classical fit; scikit-learn >= 1.8 would penalise unless ``C=np.inf``). A ridge penalty
``penalty / 2 * sum((beta_j * sd_j)^2)`` on the standardised non-intercept coefficients
is available on request. Coefficients get Wald intervals from the observed
information and, for the unpenalised fit, profile-likelihood intervals (the 1.92 drop;
:mod:`ntcp.logistic_profile`); with gEUD and a free ``n``, ``n`` is estimated by
maximising the profile log-likelihood and gets a profile-likelihood interval, and the
coefficients' intervals are conditional on the estimated ``n``.

References
----------
Christianen MEMC et al. Predictive modelling for swallowing dysfunction after primary
(chemo)radiation. Radiother Oncol 2012;105:107-114.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq, minimize_scalar
from scipy.special import expit, log_expit
from scipy.stats import chi2, norm
from sklearn.base import BaseEstimator

from ntcp.dose_metrics import dose_metric
from ntcp.errors import FewEventsWarning, ModelSpecError, NonIdentifiableError
from ntcp.geud import DEFAULT_VOLUME_TOL, DVHSet, geud_gy
from ntcp.logistic_profile import profile_intervals
from ntcp.outcome import check_binary_outcome

__all__ = ["GEUD_METRIC", "LogisticDoseModel", "MultivariableLogisticModel"]

FloatArray = NDArray[np.float64]

#: Name of the gEUD predictor.
GEUD_METRIC = "geud_gy"
_DROP = float(chi2.ppf(0.95, 1) / 2.0)
_Z95 = float(norm.ppf(0.975))
_LOG_N_BOUNDS = (np.log(0.01), np.log(100.0))
_SEPARATION_LOGIT = 30.0
_STEP_TOL = 1e-10


@dataclass(frozen=True)
class _Fit:
    beta: FloatArray
    cov: FloatArray
    loglik: float


def _irls(design: FloatArray, y: FloatArray, ridge: FloatArray) -> _Fit:
    """Maximise the (ridge-penalised) logistic log-likelihood by Newton steps."""
    beta = np.zeros(design.shape[1])
    p0 = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    beta[0] = np.log(p0 / (1 - p0))
    s = 2.0 * y - 1.0
    pen = np.diag(ridge)
    obj = -np.inf
    for _ in range(100):
        eta = design @ beta
        obj = float(log_expit(s * eta).sum() - 0.5 * beta @ pen @ beta)
        if float(np.max(np.abs(eta))) > _SEPARATION_LOGIT:
            raise NonIdentifiableError(
                "the outcome is (quasi-)perfectly separated by the predictors; "
                "the unpenalised estimate does not exist (use a penalty)"
            )
        p = expit(eta)
        grad = design.T @ (y - p) - pen @ beta
        info = (design * (p * (1 - p))[:, None]).T @ design + pen
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError as exc:
            raise NonIdentifiableError(
                "the logistic design matrix is singular "
                "(collinear or constant predictors)"
            ) from exc
        t = 1.0
        for _ in range(30):
            trial = beta + t * step
            eta_t = design @ trial
            obj_t = float(log_expit(s * eta_t).sum() - 0.5 * trial @ pen @ trial)
            if obj_t >= obj - 1e-12 * max(1.0, abs(obj)):
                break
            t *= 0.5
        beta = trial
        if float(np.max(np.abs(t * step))) < _STEP_TOL:
            break
    eta = design @ beta
    if float(np.max(np.abs(eta))) > _SEPARATION_LOGIT:
        raise NonIdentifiableError(
            "the outcome is (quasi-)perfectly separated by the predictors; "
            "the unpenalised estimate does not exist (use a penalty)"
        )
    p = expit(eta)
    info = (design * (p * (1 - p))[:, None]).T @ design + pen
    eig = np.linalg.eigvalsh(info)
    if eig[0] <= 1e-10 * eig[-1]:
        raise NonIdentifiableError(
            "flat likelihood: the information matrix is singular"
        )
    loglik = float(log_expit(s * eta).sum())
    return _Fit(beta, np.linalg.inv(info), loglik)


class MultivariableLogisticModel(BaseEstimator):  # type: ignore[misc]
    """Logistic regression on named predictors (unpenalised unless asked).

    Parameters
    ----------
    penalty : float
        Ridge strength on standardised coefficients; 0 gives the classical fit.
    profile_ci : bool
        Compute profile-likelihood intervals (unpenalised fits only; skip them in
        bootstraps and inner loops).

    Attributes
    ----------
    params_ : pandas.Series
        ``intercept`` and one coefficient per predictor name.
    ci95_ : dict
        Wald 95% intervals per parameter.
    profile_ci95_ : dict
        Profile-likelihood 95% intervals per parameter (``(None, None)`` when not
        computed; an end is ``None`` when open).
    loglik_ : float
        Log-likelihood at the estimate (without the penalty).
    summary_ : pandas.DataFrame
        Estimates, Wald SE and intervals, odds ratios.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"dose_gy": [10, 20, 30, 40, 50, 60, 15, 45]})
    >>> m = MultivariableLogisticModel().fit(X, [0, 0, 1, 0, 1, 1, 0, 1])
    >>> list(m.params_.index)
    ['intercept', 'dose_gy']
    """

    def __init__(self, penalty: float = 0.0, profile_ci: bool = True) -> None:
        self.penalty = penalty
        self.profile_ci = profile_ci

    def fit(
        self,
        X: pd.DataFrame | ArrayLike,  # noqa: N803
        y: ArrayLike,
    ) -> MultivariableLogisticModel:
        """Fit by maximum likelihood; ``X`` is a DataFrame (names kept) or an array."""
        frame = _as_frame(X)
        values = frame.to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            raise ModelSpecError("predictors contain missing or non-finite values")
        yy = check_binary_outcome(y, len(frame), n_parameters=values.shape[1] + 1)
        design = np.column_stack((np.ones(len(frame)), values))
        sd = values.std(axis=0) if values.size else np.zeros(0)
        if np.any(sd == 0):
            raise NonIdentifiableError(
                "a predictor is constant: its effect is not identified"
            )
        ridge = np.concatenate(([0.0], self.penalty * sd**2))
        fit = _irls(design, yy, ridge)
        names = ["intercept", *map(str, frame.columns)]
        self.params_ = pd.Series(fit.beta, index=names)
        self.cov_ = fit.cov
        self.loglik_ = fit.loglik
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_patients_ = len(frame)
        self.n_events_ = int(yy.sum())
        se = np.sqrt(np.diag(fit.cov))
        self.ci95_ = {
            k: (float(b - _Z95 * s), float(b + _Z95 * s))
            for k, b, s in zip(names, fit.beta, se, strict=True)
        }
        self.profile_ci95_: dict[str, tuple[float | None, float | None]] = (
            profile_intervals(design, yy, fit.beta, fit.loglik, names, se=se)
            if self.profile_ci and self.penalty == 0
            else dict.fromkeys(names, (None, None))
        )
        prof = [self.profile_ci95_[k] for k in names]
        self.summary_ = pd.DataFrame(
            {
                "estimate": fit.beta,
                "se (Wald)": se,
                "lower 95% (Wald)": fit.beta - _Z95 * se,
                "upper 95% (Wald)": fit.beta + _Z95 * se,
                "lower 95% (profile)": [lo for lo, _ in prof],
                "upper 95% (profile)": [hi for _, hi in prof],
                "odds ratio": np.exp(fit.beta),
            },
            index=pd.Index(names, name="parameter"),
        )
        return self

    def decision_function(self, X: pd.DataFrame | ArrayLike) -> FloatArray:  # noqa: N803
        """Linear predictor (log-odds)."""
        frame = _as_frame(X)
        names = list(self.params_.index[1:])
        if list(map(str, frame.columns)) != names:
            frame = (
                frame[names] if set(names) <= set(map(str, frame.columns)) else frame
            )
        values = frame.to_numpy(dtype=float)
        return np.asarray(
            self.params_.iloc[0] + values @ self.params_.iloc[1:].to_numpy()
        )

    def predict_ntcp(self, X: pd.DataFrame | ArrayLike) -> FloatArray:  # noqa: N803
        """Probability of the complication."""
        return np.asarray(expit(self.decision_function(X)))

    def predict_proba(self, X: pd.DataFrame | ArrayLike) -> FloatArray:  # noqa: N803
        """Return P(no complication), P(complication): shape ``(patients, 2)``."""
        p = self.predict_ntcp(X)
        return np.column_stack((1.0 - p, p))

    def print_summary(self, file: TextIO | None = None) -> None:
        """Write a readable summary table."""
        out = file if file is not None else sys.stdout
        out.write(
            f"<ntcp.{type(self).__name__}: {self.n_patients_} patients, "
            f"{self.n_events_} events>\nlog-likelihood = {self.loglik_:.3f}\n"
            f"{self.summary_.to_string(float_format=lambda v: f'{v:.4g}')}\n"
        )


class LogisticDoseModel(MultivariableLogisticModel):
    """Logistic NTCP on one dose metric of the organ DVH, plus optional covariates.

    Parameters
    ----------
    metric : str
        ``"geud_gy"`` (gEUD with fitted or fixed ``n``) or a TG-263 metric such as
        ``"Mean[Gy]"``, ``"V20Gy[%]"``, ``"D2%[Gy]"``.
    fix_n : float or None
        Volume parameter for gEUD; ``None`` estimates it (profile likelihood).
    alpha_beta_gy : float or None
        Use per-bin EQD2 with this alpha/beta (Gy) and each patient's fractions.
    penalty : float
        Ridge strength on standardised coefficients (0: classical fit).
    volume_tol : float
        Tolerance on the sum of each DVH's volume fractions.
    profile_ci : bool
        Compute profile-likelihood intervals of the coefficients.

    Attributes
    ----------
    n_ : float or None
        Volume parameter used (gEUD only).
    n_ci95_ : tuple or None
        Profile-likelihood interval of ``n`` when estimated.
    """

    def __init__(
        self,
        metric: str = GEUD_METRIC,
        fix_n: float | None = None,
        alpha_beta_gy: float | None = None,
        penalty: float = 0.0,
        volume_tol: float = DEFAULT_VOLUME_TOL,
        *,
        profile_ci: bool = True,
    ) -> None:
        super().__init__(penalty=penalty, profile_ci=profile_ci)
        self.metric = metric
        self.fix_n = fix_n
        self.alpha_beta_gy = alpha_beta_gy
        self.volume_tol = volume_tol

    def fit(  # type: ignore[override]
        self,
        X: DVHSet | Sequence[tuple[ArrayLike, ArrayLike]],  # noqa: N803
        y: ArrayLike,
        n_fractions: ArrayLike | None = None,
        covariates: pd.DataFrame | None = None,
    ) -> LogisticDoseModel:
        """Fit; ``covariates`` (one row per patient) are added as named predictors."""
        dvhs = DVHSet.from_dvhs(X, n_fractions, self.volume_tol)
        dose = dvhs.dose_matrix(self.alpha_beta_gy)
        vol = dvhs.volume_fraction
        self.n_ci95_: tuple[float | None, float | None] | None = None
        if self.metric != GEUD_METRIC:
            self.n_ = None
            super().fit(
                self._design(dose_metric(dose, vol, self.metric), covariates), y
            )
            return self
        if self.fix_n is not None:
            self.n_ = float(self.fix_n)
            super().fit(self._design(geud_gy(dose, vol, self.n_), covariates), y)
            return self

        def neg_profile(log_n: float) -> float:
            g = geud_gy(dose, vol, float(np.exp(log_n)))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FewEventsWarning)
                    inner = MultivariableLogisticModel(self.penalty, profile_ci=False)
                    return -float(inner.fit(self._design(g, covariates), y).loglik_)
            except NonIdentifiableError:
                return np.inf

        res = minimize_scalar(
            neg_profile, bounds=_LOG_N_BOUNDS, method="bounded", options={"xatol": 1e-6}
        )
        self.n_ = float(np.exp(res.x))
        super().fit(self._design(geud_gy(dose, vol, self.n_), covariates), y)
        target = self.loglik_ - _DROP
        sides: list[float | None] = []
        for bound in _LOG_N_BOUNDS:
            if -neg_profile(bound) > target:
                sides.append(None)
            else:
                root = brentq(
                    lambda ln: -neg_profile(ln) - target, res.x, bound, xtol=1e-6
                )
                sides.append(float(np.exp(root)))
        self.n_ci95_ = (sides[0], sides[1])
        return self

    def _design(
        self, metric: FloatArray, covariates: pd.DataFrame | None
    ) -> pd.DataFrame:
        frame = pd.DataFrame({self.metric: np.asarray(metric, dtype=float)})
        if covariates is not None:
            cov = _as_frame(covariates).reset_index(drop=True)
            if len(cov) != len(frame):
                raise ModelSpecError(
                    f"{len(cov)} covariate rows for {len(frame)} patients"
                )
            frame = pd.concat([frame, cov], axis=1)
        return frame

    def predict_ntcp(  # type: ignore[override]
        self,
        X: DVHSet | Sequence[tuple[ArrayLike, ArrayLike]],  # noqa: N803
        n_fractions: ArrayLike | None = None,
        covariates: pd.DataFrame | None = None,
    ) -> FloatArray:
        """Probability of the complication for each patient."""
        dvhs = DVHSet.from_dvhs(X, n_fractions, self.volume_tol)
        dose = dvhs.dose_matrix(self.alpha_beta_gy)
        vol = dvhs.volume_fraction
        if self.metric == GEUD_METRIC:
            assert self.n_ is not None
            metric = geud_gy(dose, vol, self.n_)
        else:
            metric = dose_metric(dose, vol, self.metric)
        return super().predict_ntcp(self._design(metric, covariates))

    def predict_proba(  # type: ignore[override]
        self,
        X: DVHSet | Sequence[tuple[ArrayLike, ArrayLike]],  # noqa: N803
        n_fractions: ArrayLike | None = None,
        covariates: pd.DataFrame | None = None,
    ) -> FloatArray:
        """Return P(no complication), P(complication): shape ``(patients, 2)``."""
        p = self.predict_ntcp(X, n_fractions, covariates)
        return np.column_stack((1.0 - p, p))


def _as_frame(X: pd.DataFrame | ArrayLike) -> pd.DataFrame:  # noqa: N803
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
