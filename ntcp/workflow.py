"""Fit and apply NTCP models on a cohort table; the result is a JSON-ready dict.

The dict is the contract of ``rtcohort ntcp fit --json`` and is also the stored form
of a fitted model (with provenance), which ``rtcohort ntcp predict --model FILE.json``
reads.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, ndtr

from ntcp.cohort_csv import CohortTable
from ntcp.dose_metrics import dose_metric, is_supported_metric
from ntcp.errors import ModelSpecError, UnknownModelError
from ntcp.geud import geud_gy
from ntcp.lkb import PARAMETER_NAMES, LKBModel
from ntcp.logistic import GEUD_METRIC, LogisticDoseModel
from ntcp.registry import ModelForm, get_model
from ntcp.validation import bootstrap_optimism, performance

__all__ = [
    "ModelKind",
    "fit_cohort",
    "load_fitted",
    "predict_cohort",
    "required_columns",
]

FloatArray = NDArray[np.float64]


# The model families of ``rtcohort ntcp fit`` are the registry's model forms.
ModelKind = ModelForm


def _code_version() -> str:
    try:
        from importlib.metadata import version

        return f"rtcohort {version('rtcohort')}"
    except Exception:
        return "rtcohort (unknown version)"


def _make(
    kind: ModelKind,
    alpha_beta_gy: float | None,
    fix_n: float | None,
    metric: str,
    profile_ci: bool,
) -> LKBModel | LogisticDoseModel:
    if kind is ModelKind.LKB:
        return LKBModel(fix_n=fix_n, alpha_beta_gy=alpha_beta_gy, profile_ci=profile_ci)
    return LogisticDoseModel(
        metric=metric, fix_n=fix_n, alpha_beta_gy=alpha_beta_gy, profile_ci=profile_ci
    )


def fit_cohort(
    table: CohortTable,
    kind: ModelKind | str,
    *,
    alpha_beta_gy: float | None = None,
    fix_n: float | None = None,
    metric: str | None = None,
    covariates: Sequence[str] = (),
    n_bootstrap: int = 0,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], FloatArray, FloatArray, str]:
    """Fit a model on a cohort.

    Returns
    -------
    tuple
        (result dict, predicted NTCP, dose axis for plots, dose axis label).
    """
    kind = ModelKind(kind)
    if table.outcome is None:
        raise ModelSpecError("the cohort has no outcome column")
    y = table.outcome.astype(float)
    if kind is ModelKind.LKB and (metric or covariates):
        raise ModelSpecError("--metric and --covariates apply to logistic models only")
    metric = metric or GEUD_METRIC
    if metric != GEUD_METRIC and not is_supported_metric(metric):
        raise ModelSpecError(f"unsupported dose metric {metric!r}")
    cov = table.covariates[list(covariates)] if covariates else None
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = _make(kind, alpha_beta_gy, fix_n, metric, profile_ci=True)
        if isinstance(model, LKBModel):
            model.fit(table.dvhs, y)
            p = model.predict_ntcp(table.dvhs)
        else:
            model.fit(table.dvhs, y, covariates=cov)
            p = model.predict_ntcp(table.dvhs, covariates=cov)
        caught = [f"{w.category.__name__}: {w.message}" for w in record]
    apparent = performance(y, p)
    result: dict[str, Any] = {
        "model": kind.value,
        "n_patients": len(table.patient_ids),
        "n_events": int(y.sum()),
        "log_likelihood": float(model.loglik_),
        "parameters": _parameters(model),
        "auc": apparent["auc"],
        "calibration": {
            "slope": apparent["calibration_slope"],
            "intercept": apparent["calibration_intercept"],
        },
        "brier": apparent["brier"],
        "dose": {
            "kind": "physical" if alpha_beta_gy is None else "eqd2",
            "alpha_beta_gy": alpha_beta_gy,
        },
    }
    if kind is ModelKind.LOGISTIC:
        result["metric"] = metric
        result["covariates"] = list(covariates)
        result["predictors"] = [metric, *covariates]
        result["methods"] = (
            "logistic regression, unpenalised maximum likelihood (Newton/IRLS); "
            "Wald and profile-likelihood 95% intervals for coefficients "
            "('ci95' is Wald, 'ci95_profile' the profile interval); "
            "n of gEUD by profile likelihood"
        )
    else:
        result["predictors"] = ["gEUD of the organ DVH"]
        result["methods"] = (
            "LKB model, maximum likelihood (Newton, analytic derivatives); 95% "
            "profile-likelihood intervals (1.92 log-likelihood drop)"
        )
    if n_bootstrap > 0:
        result["validation"] = _bootstrap(
            table,
            kind,
            alpha_beta_gy,
            fix_n,
            metric,
            cov,
            y,
            n_bootstrap,
            seed,
            progress,
        )
    result["warnings"] = caught
    result["provenance"] = {
        "data_sha256": table.sha256,
        "code_version": _code_version(),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "model": kind.value,
            "alpha_beta_gy": alpha_beta_gy,
            "fix_n": fix_n,
            "metric": metric if kind is ModelKind.LOGISTIC else None,
            "covariates": list(covariates),
            "bootstrap": n_bootstrap,
            "seed": seed,
        },
    }
    if isinstance(model, LKBModel):
        dose_axis = model.geud_gy(table.dvhs)
        label = "gEUD [Gy]" if alpha_beta_gy is None else "gEUD of EQD2 [Gy]"
    else:
        dose_axis = _metric_values(table, metric, alpha_beta_gy, model.n_)
        label = (
            f"{metric} (n={model.n_:.3g})"
            if metric == GEUD_METRIC and model.n_
            else metric
        )
    return result, p, dose_axis, label


def _parameters(model: LKBModel | LogisticDoseModel) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if isinstance(model, LKBModel):
        values = {"td50_gy": model.td50_gy_, "m": model.m_, "n": model.n_}
        for name in PARAMETER_NAMES:
            ci = model.ci95_[name]
            if ci is None:
                out[name] = {"estimate": values[name], "ci95": None, "fixed": True}
            else:
                out[name] = {
                    "estimate": values[name],
                    "ci95": list(ci),
                    "ci95_profile": list(ci),
                    "fixed": False,
                }
        return out
    for name, value in model.params_.items():
        out[str(name)] = {
            "estimate": float(value),
            "ci95": list(model.ci95_[name]),
            "ci95_wald": list(model.ci95_[name]),
            "ci95_profile": list(model.profile_ci95_[str(name)]),
        }
    if model.metric == GEUD_METRIC:
        fixed = model.fix_n is not None
        out["n"] = {
            "estimate": model.n_,
            "ci95": None if fixed else list(model.n_ci95_ or (None, None)),
            "fixed": fixed,
        }
    return out


def _metric_values(
    table: CohortTable, metric: str, alpha_beta_gy: float | None, n: float | None
) -> FloatArray:
    dose = table.dvhs.dose_matrix(alpha_beta_gy)
    vol = table.dvhs.volume_fraction
    if metric == GEUD_METRIC:
        if n is None:
            raise ModelSpecError("gEUD needs n")
        return np.asarray(geud_gy(dose, vol, n), dtype=float)
    return dose_metric(dose, vol, metric)


def _bootstrap(  # noqa: PLR0917
    table: CohortTable,
    kind: ModelKind,
    alpha_beta_gy: float | None,
    fix_n: float | None,
    metric: str,
    cov: Any,
    y: FloatArray,
    n_bootstrap: int,
    seed: int | None,
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    def fit_predict(
        train: NDArray[np.intp],
    ) -> Callable[[NDArray[np.intp]], FloatArray]:
        model = _make(kind, alpha_beta_gy, fix_n, metric, profile_ci=False)
        if isinstance(model, LKBModel):
            model.fit(table.dvhs.take(train), y[train])
            return lambda idx: model.predict_ntcp(table.dvhs.take(idx))
        c_train = None if cov is None else cov.iloc[train].reset_index(drop=True)
        model.fit(table.dvhs.take(train), y[train], covariates=c_train)

        def predict(idx: NDArray[np.intp]) -> FloatArray:
            c = None if cov is None else cov.iloc[idx].reset_index(drop=True)
            return model.predict_ntcp(table.dvhs.take(idx), covariates=c)

        return predict

    res = bootstrap_optimism(fit_predict, y, n_bootstrap, seed, progress)
    return {
        "method": "Harrell bootstrap optimism correction; whole fit repeated",
        "n_bootstrap": res.n_bootstrap,
        "n_failed": res.n_failed,
        "seed": res.seed,
        "auc": res.corrected["auc"],
        "calibration": {
            "slope": res.corrected["calibration_slope"],
            "intercept": res.corrected["calibration_intercept"],
        },
        "brier": res.corrected["brier"],
        "optimism": res.optimism,
    }


def load_fitted(path: str | Path) -> dict[str, Any]:
    """Read a fitted-model JSON written by :func:`fit_cohort` (via the CLI)."""
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelSpecError(
            f"{path}: not a readable fitted-model JSON ({exc})"
        ) from exc
    if data.get("model") not in {"lkb", "logistic"} or "parameters" not in data:
        raise ModelSpecError(f"{path}: not a fitted-model JSON (no model/parameters)")
    return data


def predict_cohort(model_ref: str, table: CohortTable) -> FloatArray:
    """NTCP for each patient, from a registry id or a fitted-model JSON path."""
    path = Path(model_ref)
    if path.suffix.lower() == ".json" or path.exists():
        return _predict_fitted(load_fitted(path), table)
    try:
        published = get_model(model_ref)
    except UnknownModelError:
        raise
    return published.predict_ntcp(table.dvhs, table.covariates)


def _predict_fitted(data: dict[str, Any], table: CohortTable) -> FloatArray:
    par = {k: v["estimate"] for k, v in data["parameters"].items()}
    ab = data.get("dose", {}).get("alpha_beta_gy")
    if data["model"] == "lkb":
        dose = table.dvhs.dose_matrix(ab)
        g = np.asarray(geud_gy(dose, table.dvhs.volume_fraction, par["n"]), dtype=float)
        return np.asarray(ndtr((g - par["td50_gy"]) / (par["m"] * par["td50_gy"])))
    metric = data.get("metric", GEUD_METRIC)
    x = _metric_values(table, metric, ab, par.get("n"))
    eta = par["intercept"] + par[metric] * x
    for name in data.get("covariates", []):
        if name not in table.covariates.columns:
            raise ModelSpecError(f"the cohort lacks the covariate column {name!r}")
        eta = eta + par[name] * table.covariates[name].to_numpy(dtype=float)
    return np.asarray(expit(eta))


def required_columns(model_ref: str) -> list[str]:
    """Extra CSV columns a model needs to predict (covariates, logistic predictors)."""
    path = Path(model_ref)
    if path.suffix.lower() == ".json" or path.exists():
        return list(load_fitted(path).get("covariates", []))
    return [p.name for p in get_model(model_ref).predictors]
