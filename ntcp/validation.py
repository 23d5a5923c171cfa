"""Discrimination, calibration and bootstrap optimism correction of NTCP models.

All functions take observed outcomes ``y`` (0/1) and predicted probabilities ``p``.
Calibration-in-the-large is the intercept of ``logit P(y=1) = a + logit(p)``
(slope fixed at 1; 0 is perfect); the calibration slope is ``b`` in
``logit P(y=1) = a + b logit(p)`` (1 is perfect). The flexible calibration curve
is a logistic regression of ``y`` on a restricted cubic spline of ``logit(p)``.
Bootstrap optimism correction (Harrell 1996) repeats the WHOLE fit on each bootstrap
sample.

References
----------
Van Calster B et al. Calibration: the Achilles heel of predictive analytics. BMC Med
2019;17:230.
Harrell FE, Lee KL, Mark DB. Multivariable prognostic models. Stat Med 1996;15:361-387.
Collins GS et al. TRIPOD+AI statement. BMJ 2024;385:e078378.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, log_expit, logit
from scipy.stats import rankdata

from ntcp.errors import NtcpError, NtcpWarning
from ntcp.logistic import _irls
from ntcp.outcome import sample_size_problems

__all__ = [
    "BootstrapResult",
    "CalibrationCurve",
    "auc",
    "bootstrap_optimism",
    "brier_score",
    "c_index",
    "calibration_curve",
    "calibration_in_the_large",
    "calibration_slope",
    "performance",
    "sample_size_problems",
]

FloatArray = NDArray[np.float64]
_EPS = 1e-12
_MIN_STEP = 1e-6
_STEP_TOL = 1e-10

#: Metrics computed by :func:`performance` (names used in reports and JSON).
METRICS = ("auc", "calibration_intercept", "calibration_slope", "brier")


def _clean(y: ArrayLike, p: ArrayLike) -> tuple[FloatArray, FloatArray]:
    yy = np.asarray(y, dtype=float).ravel()
    pp = np.clip(np.asarray(p, dtype=float).ravel(), _EPS, 1.0 - _EPS)
    if yy.shape != pp.shape:
        raise ValueError(f"{yy.size} outcomes for {pp.size} predictions")
    return yy, pp


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney form, ties counted one half).

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    yy, pp = _clean(y, p)
    n1 = float(yy.sum())
    n0 = yy.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(pp)
    return float((ranks[yy == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def c_index(durations: ArrayLike, events: ArrayLike, risk: ArrayLike) -> float:
    """Harrell's C-index for time-to-event data (higher ``risk`` = earlier event)."""
    from lifelines.utils import concordance_index

    return float(concordance_index(durations, -np.asarray(risk, dtype=float), events))


def brier_score(y: ArrayLike, p: ArrayLike) -> float:
    """Mean squared difference between outcome and predicted probability."""
    yy, pp = _clean(y, p)
    return float(np.mean((yy - pp) ** 2))


def _newton_logistic(
    x: FloatArray, y: FloatArray, offset: FloatArray, fit_slope: bool
) -> FloatArray:
    design = (
        np.column_stack((np.ones_like(x), x)) if fit_slope else np.ones((x.size, 1))
    )
    beta = np.zeros(design.shape[1])
    s = 2 * y - 1
    for _ in range(100):
        eta = offset + design @ beta
        p = expit(eta)
        grad = design.T @ (y - p)
        info = (design * (p * (1 - p))[:, None]).T @ design
        step = np.linalg.solve(info + 1e-12 * np.eye(info.shape[0]), grad)
        t = 1.0
        obj = float(log_expit(s * eta).sum())
        while t > _MIN_STEP:
            trial = beta + t * step
            if float(log_expit(s * (offset + design @ trial)).sum()) >= obj - 1e-12:
                break
            t /= 2
        beta = beta + t * step
        if float(np.max(np.abs(t * step))) < _STEP_TOL:
            break
    return beta


def calibration_in_the_large(y: ArrayLike, p: ArrayLike) -> float:
    """Return ``a`` in ``logit P(y) = a + logit(p)``; 0: calibrated on average."""
    yy, pp = _clean(y, p)
    lp = logit(pp)
    return float(_newton_logistic(lp, yy, lp, fit_slope=False)[0])


def calibration_slope(y: ArrayLike, p: ArrayLike) -> float:
    """Slope ``b`` of ``logit P(y) = a + b logit(p)``; below 1 means overfitting."""
    yy, pp = _clean(y, p)
    lp = logit(pp)
    return float(_newton_logistic(lp, yy, np.zeros_like(lp), fit_slope=True)[1])


@dataclass(frozen=True)
class CalibrationCurve:
    """Flexible calibration curve plus observed rates in groups of predicted risk."""

    predicted: FloatArray
    observed: FloatArray
    group_predicted: FloatArray
    group_observed: FloatArray
    group_size: NDArray[np.int64]


def _rcs_basis(x: FloatArray, knots: FloatArray) -> FloatArray:
    """Restricted cubic spline basis (Harrell): linear term plus k-2 nonlinear terms."""
    k = knots.size
    scale = (knots[-1] - knots[0]) ** 2
    span = knots[-1] - knots[-2]
    cols = [x]
    for j in range(k - 2):
        term = (
            np.maximum(x - knots[j], 0) ** 3
            - np.maximum(x - knots[-2], 0) ** 3 * (knots[-1] - knots[j]) / span
            + np.maximum(x - knots[-1], 0) ** 3 * (knots[-2] - knots[j]) / span
        )
        cols.append(term / scale)
    return np.column_stack(cols)


def calibration_curve(
    y: ArrayLike, p: ArrayLike, n_knots: int = 3, n_groups: int = 10, n_points: int = 50
) -> CalibrationCurve:
    """Spline-logistic calibration curve and grouped observed rates.

    The curve is ``logit P(y) = a + s(logit p)`` with ``s`` a restricted cubic spline
    with knots at the 10th/50th/90th percentiles of ``logit p`` (3 knots).
    """
    yy, pp = _clean(y, p)
    lp = logit(pp)
    knots = np.quantile(lp, np.linspace(0.1, 0.9, n_knots))
    grid_p = np.linspace(
        float(np.quantile(pp, 0.01)), float(np.quantile(pp, 0.99)), n_points
    )
    if np.unique(knots).size < n_knots:
        beta = _newton_logistic(lp, yy, np.zeros_like(lp), fit_slope=True)
        fitted = expit(beta[0] + beta[1] * logit(grid_p))
    else:
        basis = _rcs_basis(lp, knots)
        design = np.column_stack((np.ones_like(lp), basis))
        try:
            fit = _irls(design, yy, np.zeros(design.shape[1]))
            grid_design = np.column_stack(
                (np.ones(n_points), _rcs_basis(logit(grid_p), knots))
            )
            fitted = expit(grid_design @ fit.beta)
        except NtcpError:
            fitted = np.full(n_points, np.nan)
    order = np.argsort(pp, kind="stable")
    groups = np.array_split(order, min(n_groups, max(1, yy.size // 5)))
    return CalibrationCurve(
        predicted=grid_p,
        observed=np.asarray(fitted, dtype=float),
        group_predicted=np.array([pp[g].mean() for g in groups]),
        group_observed=np.array([yy[g].mean() for g in groups]),
        group_size=np.array([g.size for g in groups], dtype=np.int64),
    )


def performance(y: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """AUC, calibration intercept (in the large), calibration slope and Brier score."""
    return {
        "auc": auc(y, p),
        "calibration_intercept": calibration_in_the_large(y, p),
        "calibration_slope": calibration_slope(y, p),
        "brier": brier_score(y, p),
    }


@dataclass
class BootstrapResult:
    """Apparent, optimism and optimism-corrected performance."""

    apparent: dict[str, float]
    optimism: dict[str, float]
    corrected: dict[str, float]
    n_bootstrap: int
    n_failed: int
    seed: int | None
    failures: list[str] = field(default_factory=list)


def bootstrap_optimism(
    fit_predict: Callable[[NDArray[np.intp]], Callable[[NDArray[np.intp]], FloatArray]],
    y: ArrayLike,
    n_bootstrap: int = 200,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BootstrapResult:
    """Harrell's bootstrap optimism correction, repeating the whole fit each time.

    Parameters
    ----------
    fit_predict : callable
        ``fit_predict(train_index)`` fits the model (every step: parameter estimation,
        ``n``, metric choice) on the patients at ``train_index`` (with repeats) and
        returns ``predict(index) -> probabilities``.
    y : array_like
        Outcomes of all patients.
    n_bootstrap : int
        Number of bootstrap samples.
    seed : int or None
        Seed of ``numpy.random.default_rng``.
    progress : callable, optional
        Called with the number of samples done.

    Returns
    -------
    BootstrapResult
        Samples whose fit fails (no events, non-identifiable) are counted in
        ``n_failed`` and left out.
    """
    yy = np.asarray(y, dtype=float)
    all_idx = np.arange(yy.size)
    apparent = performance(yy, fit_predict(all_idx)(all_idx))
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[float]] = {k: [] for k in METRICS}
    failures: list[str] = []
    for b in range(n_bootstrap):
        idx = rng.integers(0, yy.size, yy.size)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NtcpWarning)
                predict = fit_predict(idx)
                boot = performance(yy[idx], predict(idx))
                test = performance(yy, predict(all_idx))
        except NtcpError as exc:
            failures.append(f"sample {b}: {exc}")
        else:
            for k in METRICS:
                diffs[k].append(boot[k] - test[k])
        if progress is not None:
            progress(b + 1)
    optimism = {k: float(np.mean(v)) if v else float("nan") for k, v in diffs.items()}
    corrected = {k: apparent[k] - optimism[k] for k in METRICS}
    return BootstrapResult(
        apparent, optimism, corrected, n_bootstrap, len(failures), seed, failures
    )
