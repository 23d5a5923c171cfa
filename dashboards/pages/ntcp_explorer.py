"""NTCP explorer: fit LKB or logistic models on a project's patients (researchers).

Only the user's active projects are offered (:func:`ntcp.explorer.researcher_projects`);
a project given in the address (``?project=CODE``) that the user is not, or no longer,
a member of ends in a plain message. Every computation is in :mod:`ntcp.explorer`;
the fit is kept in the session for the choices it was made with.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd  # type: ignore[import-untyped]
import streamlit as st

from cohort.errors import CohortError, PermissionDeniedError
from cohort.permissions import Action
from dashboards.messages import t
from dashboards.ui.bench import open_page
from dashboards.ui.charts import show_chart, show_table
from dashboards.ui.resources import factory
from dashboards.ui.session import md_escape
from ntcp.dataset import DatasetSpec
from ntcp.explorer import (
    ExplorerFit,
    calibration_table,
    dose_bins,
    export_dataset_csv,
    fit_explorer,
    project_organs,
    published_overlay,
    report_html,
    researcher_projects,
    response_curve,
)
from ntcp.registry import default_models
from ntcp.validation import auc
from omop.errors import RTCohortError

__all__ = ["render"]

_FIT = "ntcp_explorer_fit"
_OVERLAY = "ntcp_explorer_overlay"


def _plain(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``call``; on a refusal or bad input say why plainly and return None."""
    try:
        return call(*args, **kwargs)
    except PermissionDeniedError:
        st.error(t("explorer.not_member"))
    except (CohortError, RTCohortError, ValueError) as exc:
        st.warning(t("explorer.cannot", reason=md_escape(str(exc))))
    return None


def _in_session(call: Any, *args: Any) -> Any:
    def run() -> Any:
        with factory().begin() as session:
            return call(session, *args)

    return _plain(run)


def _choose(username: str, projects: list[str]) -> tuple[DatasetSpec, str] | None:
    asked = st.query_params.get("project")
    if asked and asked not in projects:
        st.error(t("explorer.not_member"))
        return None
    project = st.selectbox(t("explorer.project"), projects,
                           index=projects.index(asked) if asked else 0)  # fmt: skip
    organs = _in_session(project_organs, username, project)
    if organs is None:
        return None
    if not organs:
        st.info(t("explorer.no_organs"))
        return None
    organ = st.selectbox(t("explorer.organ"), list(organs),
                         format_func=lambda o: f"{o} ({organs[o]})")  # fmt: skip
    dose = st.radio(t("explorer.dose"), ["physical", "eqd2"], horizontal=True,
                    format_func=lambda d: t(f"explorer.dose_{d}"))  # fmt: skip
    eqd2 = dose == "eqd2"
    ab = st.number_input(t("explorer.alpha_beta"), 0.5, 20.0, 3.0, 0.5,
                         disabled=not eqd2)  # fmt: skip
    endpoint = st.text_input(t("explorer.endpoint"), "ctcae:Pneumonitis>=2@365d",
                             help=t("explorer.endpoint_help")).strip()  # fmt: skip
    model = st.radio(t("explorer.model"), ["lkb", "logistic"], horizontal=True,
                     format_func=lambda m: t(f"explorer.model_{m}"))  # fmt: skip
    spec = DatasetSpec(organ=organ, endpoint=endpoint, project=project,
                       alpha_beta_gy=float(ab) if eqd2 else None)  # fmt: skip
    return spec, str(model)


def _parameters(fit: ExplorerFit) -> None:
    rows = []
    for name, par in fit.result["parameters"].items():
        ci = par.get("ci95_profile") or par.get("ci95")
        rows.append({
            "parameter": name, "estimate": par["estimate"],
            "lower_95": None if par.get("fixed") or not ci else ci[0],
            "upper_95": None if par.get("fixed") or not ci else ci[1],
            "fixed": bool(par.get("fixed", False)),
        })  # fmt: skip
    st.subheader(t("explorer.parameters"))
    show_table(pd.DataFrame(rows), "ntcp-parameters", {})
    for warning in fit.result.get("warnings", []):
        st.caption(md_escape(str(warning)))


def _overlay(username: str, fit: ExplorerFit, organ: str, model: Any) -> Any:
    """Return the published model's curve for this fit, read once per fit and model.

    Its other organs are read for the same patients, as the user (an audited
    ``ntcp dataset`` each); a rerun of the page (a download, another widget) reuses
    it, as it reuses the fit, instead of reading and auditing them again.
    """
    kept = st.session_state.get(_OVERLAY)
    if kept is not None and kept[0] is fit and kept[1] == model.id:
        return kept[2]
    overlay = _in_session(
        lambda session: published_overlay(
            model, fit, organ, session=session, user=username
        )
    )
    if overlay is not None:  # None: a refusal, said on the page; ask again next time
        st.session_state[_OVERLAY] = (fit, model.id, overlay)
    return overlay


def _dose_response(username: str, fit: ExplorerFit, organ: str) -> None:
    st.subheader(t("explorer.dose_response"))
    bins, curve = dose_bins(fit), response_curve(fit)
    x = alt.X("dose:Q", title=fit.dose_label)
    layers = [
        alt.Chart(curve.dropna()).mark_line().encode(x=x, y=alt.Y(
            "ntcp:Q", title=t("explorer.ntcp"), scale=alt.Scale(domain=[0, 1]))),
        alt.Chart(bins.rename(columns={"dose_mean": "dose"})).mark_point(
            filled=True).encode(x="dose:Q", y="observed:Q"),
        alt.Chart(bins.rename(columns={"dose_mean": "dose"})).mark_errorbar().encode(
            x="dose:Q", y="observed_lo:Q", y2="observed_hi:Q"),
    ]  # fmt: skip
    published = default_models(organ)
    if published:
        chosen = st.selectbox(t("explorer.published"), [None, *published],
                              format_func=lambda m: t("explorer.none") if m is None
                              else m.id)  # fmt: skip
        if chosen is not None:
            overlay = _overlay(username, fit, organ, chosen)
            if isinstance(overlay, str):
                st.info(md_escape(overlay))
            elif overlay is not None:
                layers.append(alt.Chart(overlay.rename(
                    columns={"dose_mean": "dose"})).mark_line(
                    strokeDash=[4, 4], color="gray").encode(
                    x="dose:Q", y="published:Q"))  # fmt: skip
                st.caption(md_escape(overlay.attrs["caption"]))
    else:
        st.caption(t("explorer.no_published"))
    show_chart(alt.layer(*layers), bins, "ntcp-dose-response")


def _calibration(fit: ExplorerFit) -> None:
    st.subheader(t("explorer.calibration"))
    st.metric(t("explorer.auc"), f"{auc(fit.y, fit.p):.3f}")
    table = calibration_table(fit)
    diagonal = alt.Chart(pd.DataFrame({"v": [0.0, 1.0]})).mark_line(
        color="lightgray").encode(x="v:Q", y="v:Q")  # fmt: skip
    points = alt.Chart(table).mark_point(filled=True).encode(
        x=alt.X("predicted:Q", title=t("explorer.predicted")),
        y=alt.Y("observed:Q", title=t("explorer.observed")), size="n:Q")  # fmt: skip
    curve = alt.Chart(pd.DataFrame(table.attrs["curve"])).mark_line().encode(
        x="predicted:Q", y="observed:Q")  # fmt: skip
    show_chart(diagonal + curve + points, table, "ntcp-calibration")


def _downloads(username: str, spec: DatasetSpec, fit: ExplorerFit) -> None:
    left, right = st.columns(2)
    left.download_button(t("explorer.report"), data=lambda: report_html(fit),
                         file_name="ntcp-report.html", mime="text/html")  # fmt: skip

    def dataset() -> str:
        with factory().begin() as session:
            return export_dataset_csv(session, username, spec)

    right.download_button(
        t("explorer.dataset"), data=dataset, file_name=f"ntcp-{spec.project}.csv",
        mime="text/csv",
    )  # fmt: skip


def render() -> None:
    """Show the NTCP explorer to a researcher, for their own projects only."""
    identity = open_page("ntcp_explorer", Action.READ_PATIENTS)
    st.header(t("explorer.heading"))
    if identity.role != "researcher":
        st.info(t("explorer.researchers_only"))
        return
    projects = _in_session(researcher_projects, identity.username)
    if not projects:
        st.info(t("explorer.no_projects"))
        return
    chosen = _choose(identity.username, projects)
    if chosen is None:
        return
    spec, model = chosen
    key = (spec, model)
    if st.button(t("explorer.fit"), type="primary"):
        st.session_state[_FIT] = (key, _in_session(fit_explorer, identity.username,
                                                   spec, model))  # fmt: skip
    kept = st.session_state.get(_FIT)
    if kept is None or kept[0] != key or kept[1] is None:
        return
    fit: ExplorerFit = kept[1]
    s = fit.dataset.summary()
    st.caption(t("explorer.summary", n=s["n_included"], events=s["n_events"],
                 excluded=s["n_excluded"]))  # fmt: skip
    _parameters(fit)
    _dose_response(identity.username, fit, spec.organ)
    _calibration(fit)
    _downloads(identity.username, spec, fit)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
