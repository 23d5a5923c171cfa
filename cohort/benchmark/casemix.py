r"""Expected event counts per centre from a case-mix model fitted on all centres.

A logistic model of the binary outcome on patient factors (age at the start of
radiotherapy, sex, treatment site, fractionation, stage when recorded) is fitted on
the patients of every centre together; each patient's predicted probability is the
risk expected of an average centre for that patient, and the sum over a centre's
patients is its expected count :math:`E`. Observed :math:`O` over :math:`E` goes on
the funnel plot (:mod:`cohort.benchmark.funnel`).

.. math::

    \operatorname{logit} P(y_i = 1) = \beta_0 + x_i^\top\beta, \qquad
    E_c = \sum_{i \in c} \hat p_i

Numeric factors enter linearly (standardised for the fit); categorical factors
(strings, categories, booleans) are one-hot coded with the first level as reference,
missing categories as their own level ``"missing"``. The fit is the exact
unpenalised maximum-likelihood estimate, by Newton's method (iteratively reweighted
least squares, :func:`logistic_fit`): the same fitted probabilities as scikit-learn's
``LogisticRegression(C=inf)`` in a fraction of its time, and, with the intercept, the
expected counts of all centres add up to the observed ones. Under (quasi-)separation
the probabilities of the separated patients tend to 0 or 1 (their limit is taken);
if the probabilities do not settle, a :class:`CaseMixFitWarning` says so.

Adjusting for dose (``dose_column``) removes the part of the differences between
centres that comes from their dose: it answers "is the toxicity what this dose would
give?", and hides differences in practice, which is usually what benchmarking is
meant to show. The output says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import NDArray

from cohort.benchmark.errors import BenchmarkInputError

__all__ = [
    "DOSE_ADJUSTED_LABEL",
    "CaseMixFitWarning",
    "design_matrix",
    "expected_counts",
    "logistic_fit",
]

FloatArray = NDArray[np.float64]

#: Label of an expected count that adjusts for dose.
DOSE_ADJUSTED_LABEL = "adjusted for dose: hides differences in practice"
_CASE_MIX_LABEL = "adjusted for case mix (patient factors only)"


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def design_matrix(df: pd.DataFrame, factors: Sequence[str]) -> pd.DataFrame:
    """Numeric design of the case-mix model (one-hot categorical, numeric as is).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient.
    factors : sequence of str
        Columns to use; a column that is missing on every row is left out.

    Returns
    -------
    pandas.DataFrame
        One column per numeric factor and per non-reference level; ``attrs`` holds
        ``dropped`` (factors left out because entirely missing or constant).

    Examples
    --------
    >>> d = pd.DataFrame({"age": [60, 70, 80], "sex": ["F", "M", "F"]})
    >>> list(design_matrix(d, ["age", "sex"]).columns)
    ['age', 'sex=M']
    """
    parts: list[pd.DataFrame] = []
    dropped: list[str] = []
    for name in factors:
        if name not in df.columns:
            raise BenchmarkInputError(f"factors: no column {name!r} in the table")
        col = df[name]
        if col.isna().all() or col.nunique(dropna=False) < 2:  # noqa: PLR2004
            dropped.append(name)
            continue
        if _is_categorical(col):
            levels = col.astype(object).where(col.notna(), "missing").astype(str)
            dummies = pd.get_dummies(levels, prefix=name, prefix_sep="=", dtype=float)
            parts.append(dummies.iloc[:, 1:])
        else:
            if col.isna().any():
                raise BenchmarkInputError(
                    f"factors: column {name!r} has missing values "
                    f"({int(col.isna().sum())} rows); impute or drop them first"
                )
            parts.append(col.astype(float).to_frame(name))
    design = (
        pd.concat(parts, axis=1) if parts else pd.DataFrame(index=df.index)
    ).set_axis(df.index, axis=0)
    design.attrs["dropped"] = dropped
    return design


class CaseMixFitWarning(UserWarning):
    """The case-mix model's fitted probabilities did not settle."""


_MAX_ITER, _TOL = 200, 1e-12


def _expit(eta: FloatArray) -> FloatArray:
    with np.errstate(over="ignore"):  # e^-eta = inf: the probability is 0
        return np.asarray(1.0 / (1.0 + np.exp(-eta)), dtype=float)


def _log_likelihood(eta: FloatArray, y: FloatArray) -> float:
    # log L = sum(y * eta - log(1 + e^eta)), stable for large |eta|
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def logistic_fit(x: FloatArray, y: NDArray[np.int64]) -> FloatArray:
    """Fitted probabilities of the unpenalised logistic regression of ``y`` on ``x``.

    Newton's method with an intercept and step halving; a singular information
    matrix (collinear columns) takes the minimum-norm step, so the fitted
    probabilities are unique even where the coefficients are not. Stops when no
    probability moves by more than 1e-12.

    Parameters
    ----------
    x : ndarray, shape (n, k)
        Design (without the intercept column).
    y : ndarray of 0/1, shape (n,)
        Outcome; both values must occur.

    Returns
    -------
    ndarray, shape (n,)
        Fitted probabilities; they add up to ``y.sum()`` (the intercept's score).

    Warns
    -----
    CaseMixFitWarning
        If the probabilities have not settled after 200 iterations.

    Examples
    --------
    >>> x = np.array([[0.0], [0.0], [1.0], [1.0]])
    >>> logistic_fit(x, np.array([0, 1, 1, 1])).round(3).tolist()
    [0.5, 0.5, 1.0, 1.0]
    """
    yf = y.astype(float)
    design = np.column_stack([np.ones(y.size), x])
    beta = np.zeros(design.shape[1])
    mean = yf.mean()
    beta[0] = np.log(mean / (1.0 - mean))
    eta = design @ beta
    p = _expit(eta)
    loglik = _log_likelihood(eta, yf)
    for _ in range(_MAX_ITER):
        weight = p * (1.0 - p)
        info = design.T @ (design * weight[:, None])
        step = np.linalg.lstsq(info, design.T @ (yf - p), rcond=None)[0]
        for _halving in range(30):
            new_eta = design @ (beta + step)
            new_loglik = _log_likelihood(new_eta, yf)
            if new_loglik >= loglik - 1e-12 * abs(loglik):
                break
            step = step / 2.0
        beta, eta, loglik = beta + step, new_eta, max(loglik, new_loglik)
        new_p = _expit(eta)
        moved = float(np.max(np.abs(new_p - p)))
        p = new_p
        if moved <= _TOL:
            return p
    warnings.warn(
        "case-mix model: the fitted probabilities did not settle in "
        f"{_MAX_ITER} iterations (largest last change {moved:.2g}); the expected "
        "counts may be inaccurate (complete separation by a factor?)",
        CaseMixFitWarning,
        stacklevel=3,
    )
    return p


def _predict(design: pd.DataFrame, y: NDArray[np.int64]) -> FloatArray:
    if design.shape[1] == 0 or y.min() == y.max():
        return np.full(y.size, float(y.mean()))
    x = design.to_numpy(dtype=float)
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return logistic_fit(x, y)


def expected_counts(
    df: pd.DataFrame,
    outcome: str,
    factors: Sequence[str],
    by: str = "centre",
    dose_column: str | None = None,
) -> pd.DataFrame:
    """Observed and case-mix expected event counts per centre.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient with the ``outcome`` (0/1), the ``factors``, ``by`` and,
        if given, ``dose_column``.
    outcome : str
        Binary outcome column (e.g. grade >= 2 of an endpoint by 12 months).
    factors : sequence of str
        Patient factors (e.g. ``age_at_rt_start``, ``sex``, ``site``,
        ``fractionation``, ``stage``); entirely missing factors are left out.
    by : str
        Column of the unit compared (the centre).
    dose_column : str or None
        Also adjust for this dose metric. Labelled as hiding differences in practice.

    Returns
    -------
    pandas.DataFrame
        One row per unit: ``<by>``, ``n``, ``observed``, ``expected``, ``ratio``
        (O/E), ``dose_adjusted`` (bool) and ``adjustment`` (a label for the chart).
        ``attrs`` holds ``factors_used`` and ``factors_dropped``.

    Examples
    --------
    >>> d = pd.DataFrame({"centre": ["A", "A", "B", "B"], "y": [1, 0, 0, 0],
    ...                   "sex": ["F", "M", "F", "M"]})
    >>> t = expected_counts(d, "y", ["sex"])
    >>> t["observed"].tolist(), t["expected"].round(3).tolist()
    ([1, 0], [0.5, 0.5])
    """
    for name in (outcome, by, *([dose_column] if dose_column else [])):
        if name not in df.columns:
            raise BenchmarkInputError(f"expected_counts: no column {name!r}")
    y_raw = df[outcome]
    if y_raw.isna().any() or not y_raw.isin([0, 1, True, False]).all():
        raise BenchmarkInputError(f"{outcome}: the outcome must be 0 or 1 on every row")
    if df[by].isna().any():
        raise BenchmarkInputError(f"{by}: a patient has no {by}")
    y = y_raw.astype(np.int64).to_numpy()
    used = [*factors, *([dose_column] if dose_column else [])]
    design = design_matrix(df, used)
    p = _predict(design, y) if y.size else np.zeros(0)
    work = pd.DataFrame({by: df[by].to_numpy(), "y": y, "p": p})
    out = (
        work.groupby(by, sort=True, observed=True)
        .agg(n=("y", "size"), observed=("y", "sum"), expected=("p", "sum"))
        .reset_index()
    )
    out["n"] = out["n"].astype(np.int64)
    out["observed"] = out["observed"].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["ratio"] = out["observed"] / out["expected"].where(out["expected"] > 0)
    out["dose_adjusted"] = dose_column is not None
    out["adjustment"] = DOSE_ADJUSTED_LABEL if dose_column else _CASE_MIX_LABEL
    dropped = list(design.attrs["dropped"])
    out.attrs["factors_used"] = [f for f in used if f not in dropped]
    out.attrs["factors_dropped"] = dropped
    return out
