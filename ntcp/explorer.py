"""What the NTCP explorer page shows, computed here so the page only calls it.

A researcher picks one of their active projects (:func:`researcher_projects`), an
organ of its patients (:func:`project_organs`), a dose representation, an endpoint
(:mod:`ntcp.endpoints`) and a model; :func:`fit_explorer` extracts the dataset as that
user (:func:`ntcp.dataset.extract_dataset`: permission layer, project pseudonyms,
audited) and fits it (:func:`ntcp.workflow.fit_cohort`). Bad input (no patient, no
event, a fit that does not converge) raises :class:`ExplorerError` with a plain
reason. The tables of the page: :func:`dose_bins` (observed rates in dose bins with
Clopper-Pearson 95% intervals), :func:`response_curve`, :func:`calibration_table`,
:func:`published_overlay`; the downloads: :func:`report_html` and
:func:`export_dataset_csv` (audited as an export).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import NDArray
from scipy.special import expit, ndtr
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import audit
from cohort.permissions import Action, scope_for
from cohort.projects import get_project
from cohort.users import resolve_user
from etl.store.report import structure_counts
from ntcp.dataset import DatasetSpec, OmopDataset, extract_dataset
from ntcp.errors import NtcpError
from ntcp.explorer_overlay import model_features
from ntcp.registry import ModelForm, PublishedModel
from ntcp.report import binned_rates, build_report, render_html
from ntcp.validation import calibration_curve
from ntcp.workflow import fit_cohort
from omop.cdm import Person
from omop.cohort_tables import AppUser, Project

__all__ = [
    "ExplorerError",
    "ExplorerFit",
    "calibration_table",
    "dose_bins",
    "export_dataset_csv",
    "fit_explorer",
    "project_organs",
    "published_overlay",
    "report_html",
    "researcher_projects",
    "response_curve",
]

FloatArray = NDArray[np.float64]


class ExplorerError(NtcpError, ValueError):
    """The explorer cannot show a fit; the message says why, plainly."""


@dataclass(frozen=True)
class ExplorerFit:
    """A fitted model with its dataset and per-patient values."""

    dataset: OmopDataset
    result: dict[str, Any]
    y: FloatArray
    p: FloatArray
    dose: FloatArray
    dose_label: str


def researcher_projects(
    session: Session, user: AppUser | str, *, today: datetime.date | None = None
) -> list[str]:
    """Return the codes of the active projects whose patients ``user`` may read.

    Empty for a user outside every project, and for roles that do not read through
    projects (only researchers use the explorer).
    """
    scope = scope_for(session, resolve_user(session, user), Action.READ_PATIENTS,
                      today=today)  # fmt: skip
    if not scope.allowed or scope.project_ids is None:
        return []
    return list(
        session.scalars(
            select(Project.code)
            .where(Project.project_id.in_(sorted(scope.project_ids)))
            .order_by(Project.code)
        )
    )


def project_organs(
    session: Session, user: AppUser | str, project: str
) -> dict[str, int]:
    """Return ``{TG-263 organ: patients with its DVH}`` of the project, most first.

    Raises
    ------
    PermissionDeniedError
        The user is not (or no longer) a member of the active project (audited).
    """
    scope = scope_for(session, resolve_user(session, user), Action.READ_PATIENTS)
    found = get_project(session, project)
    persons = select(Person.person_id).where(
        scope.project_filter(Person.person_id, found)
    )
    counts = structure_counts(session, persons)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def fit_explorer(
    session: Session, user: AppUser | str, spec: DatasetSpec, model: str
) -> ExplorerFit:
    """Extract the dataset of ``spec`` as ``user`` (audited) and fit ``model``.

    Raises
    ------
    ExplorerError
        No patient qualifies, the endpoint has no events (or only events), or the
        fit does not converge.
    PermissionDeniedError, NtcpError
        From the extraction (not a member, unknown term, bad endpoint).
    """
    ds = extract_dataset(session, user, spec)
    summary = ds.summary()
    if not ds.table.patient_ids:
        reasons = ", ".join(f"{k} {v}" for k, v in summary["excluded"].items())
        raise ExplorerError(
            f"no patient qualifies for {spec.organ} and {ds.endpoint}"
            + (f" (left out: {reasons})" if reasons else "")
        )
    n, events = summary["n_included"], summary["n_events"]
    if events in {0, n}:
        what = "no events" if events == 0 else "only events"
        raise ExplorerError(
            f"the endpoint {ds.endpoint} has {what} among the {n} patients: "
            "no model can be fitted"
        )
    try:
        result, p, dose, label = fit_cohort(
            ds.table, model, alpha_beta_gy=spec.alpha_beta_gy
        )
    except (NtcpError, ArithmeticError, np.linalg.LinAlgError) as exc:
        raise ExplorerError(f"the fit did not converge: {exc}") from exc
    result["endpoint"] = str(ds.endpoint)
    result["provenance"]["source"] = "OMOP (rtcohort NTCP explorer)"
    y = np.asarray(ds.table.outcome, dtype=float)
    return ExplorerFit(ds, result, y, np.asarray(p, dtype=float),
                       np.asarray(dose, dtype=float), label)  # fmt: skip


def dose_bins(fit: ExplorerFit, n_bins: int = 8) -> pd.DataFrame:
    """Observed rates with Clopper-Pearson 95% intervals and mean NTCP per dose bin.

    Returns
    -------
    DataFrame
        The columns of :func:`ntcp.report.binned_rates` (``dose_mean``, ``n``,
        ``events``, ``observed``, ``observed_lo``, ``observed_hi``, ``predicted``).
    """
    return pd.DataFrame(binned_rates(fit.dose, fit.y, fit.p, n_bins))


def _curve(result: dict[str, Any], x: FloatArray) -> FloatArray | None:
    par = result["parameters"]
    if result["model"] == ModelForm.LKB.value:
        t50, m = par["td50_gy"]["estimate"], par["m"]["estimate"]
        return np.asarray(ndtr((x - t50) / (m * t50)), dtype=float)
    if result.get("covariates"):
        return None
    eta = par["intercept"]["estimate"] + par[result["metric"]]["estimate"] * x
    return np.asarray(expit(eta), dtype=float)


def response_curve(fit: ExplorerFit, points: int = 200) -> pd.DataFrame:
    """Return the fitted dose-response curve on the dose axis (``dose``, ``ntcp``)."""
    x = np.linspace(0.0, float(np.max(fit.dose)) * 1.05, points)
    p = _curve(fit.result, x)
    return pd.DataFrame({"dose": x, "ntcp": p if p is not None else np.nan})


def calibration_table(fit: ExplorerFit) -> pd.DataFrame:
    """Observed against predicted in groups of predicted risk (with their size).

    Returns
    -------
    DataFrame
        ``predicted``, ``observed``, ``n``; ``attrs["curve"]`` the flexible
        calibration curve (``{"predicted": [...], "observed": [...]}``).
    """
    c = calibration_curve(fit.y, fit.p)
    out = pd.DataFrame({"predicted": c.group_predicted, "observed": c.group_observed,
                        "n": c.group_size})  # fmt: skip
    keep = np.isfinite(c.observed)
    out.attrs["curve"] = {"predicted": c.predicted[keep].tolist(),
                          "observed": c.observed[keep].tolist()}  # fmt: skip
    return out


def published_overlay(
    model: PublishedModel,
    fit: ExplorerFit,
    organ: str,
    *,
    session: Session | None = None,
    user: AppUser | str | None = None,
) -> pd.DataFrame | str:
    """Per dose bin, the mean NTCP of a published model on the same patients.

    A logistic model that also needs other organs (Christianen 2012: Musc_Constrict_S
    and Larynx_SG) takes their dose for the same patients from a second extraction
    as ``user`` (:mod:`ntcp.explorer_overlay`: permission layer, audited); patients
    without one of the organs are left out and the bins are over the others.

    Returns
    -------
    DataFrame or str
        ``dose_mean`` and ``published`` per bin of :func:`dose_bins` (of the patients
        used); ``attrs``: ``n`` patients used, ``left_out`` ``{organ: patients
        without it}``, ``caption`` a sentence saying so. Or the plain reason the
        model cannot be applied (another organ is not recorded for these patients, or
        no session to read it; EQD2 without fractions; another dose representation
        than the fit).
    """
    keep = np.ones(len(fit.y), dtype=bool)
    left_out: dict[str, int] = {}
    if model.form is ModelForm.LKB:
        try:
            p = model.predict_ntcp(fit.dataset.table.dvhs)
        except NtcpError as exc:
            return f"{model.id} cannot be applied: {exc}"
    else:
        try:
            found = model_features(session, user, model, fit.dataset)
        except NtcpError as exc:
            return f"{model.id} cannot be applied: {exc}"
        if found.unrecorded:
            return f"{model.id} also needs the dose of {', '.join(found.unrecorded)}"
        if not found.keep.any():
            return (
                f"{model.id}: no patient has the dose of every organ it needs "
                f"({', '.join(sorted({q.organ for q in model.predictors}))})"
            )
        keep, left_out = found.keep, found.missing
        p = model.predict_ntcp(None, found.features)
    bins = binned_rates(fit.dose[keep], fit.y[keep], p)
    out = pd.DataFrame(
        {"dose_mean": [b["dose_mean"] for b in bins],
         "published": [b["predicted"] for b in bins]}
    )  # fmt: skip
    n = int(keep.sum())
    out.attrs["n"], out.attrs["left_out"] = n, left_out
    out.attrs["caption"] = f"{model.id} on {n} of {len(keep)} patients" + (
        "; left out (no dose of "
        + ", ".join(f"{o}: {k}" for o, k in left_out.items() if k)
        + ")"
        if any(left_out.values())
        else ""
    )
    return out


def report_html(fit: ExplorerFit) -> str:
    """Return the model report (HTML, figures embedded) of :mod:`ntcp.report`."""
    content = build_report(fit.result, fit.y, fit.p, fit.dose, fit.dose_label)
    x = np.linspace(0.0, float(np.max(fit.dose)) * 1.05, 200)
    curve = _curve(fit.result, x)
    return render_html(content, None if curve is None else x, curve)


def export_dataset_csv(session: Session, user: AppUser | str, spec: DatasetSpec) -> str:
    """Return the dataset CSV (project pseudonyms) and audit the export.

    The extraction is audited as usual (``ntcp dataset``); the download adds an
    ``ntcp dataset export`` record naming the same patients.
    """
    actor = resolve_user(session, user)
    ds = extract_dataset(session, actor, spec)
    audit.record(
        session, actor.username, "ntcp dataset export",
        f"project {spec.project}; organ {spec.organ}; endpoint {ds.endpoint}; "
        f"{len(ds.table.patient_ids)} patients",
        ds.person_ids,
    )  # fmt: skip
    return ds.to_csv()
