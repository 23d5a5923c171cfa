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
missing categories as their own level ``"missing"``. The fit is unpenalised
(scikit-learn ``LogisticRegression(C=inf)``); statsmodels is not installed.

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
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from cohort.benchmark.errors import BenchmarkInputError

__all__ = ["DOSE_ADJUSTED_LABEL", "design_matrix", "expected_counts"]

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


def _predict(design: pd.DataFrame, y: NDArray[np.int64]) -> FloatArray:
    if design.shape[1] == 0 or y.min() == y.max():
        return np.full(y.size, float(y.mean()))
    x = design.to_numpy(dtype=float)
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(C=np.inf, max_iter=5000, tol=1e-8).fit(x, y)
    return np.asarray(model.predict_proba(x)[:, 1], dtype=float)


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
