"""Outcome benchmarking: toxicity cumulative incidence and PROM courses per centre.

Aalen-Johansen (death competing) with 1 - Kaplan-Meier (death censored) beside it,
labelled; QLQ-C30 means by timepoint with 95% intervals and the share deteriorating
from baseline. Through :mod:`cohort.benchmark.queries_outcome`, cached per viewer.
"""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards.auth import Identity
from dashboards.messages import t
from dashboards.ui.bench import attempt, caption, empty, open_page
from dashboards.ui.cached import read
from dashboards.ui.charts import show_chart, show_table
from dashboards.ui.session import md_escape

__all__ = ["render"]

_SITES = ("breast", "prostate", "head_neck", "lung")


def _incidence(identity: Identity, site: str, term: str) -> None:
    st.subheader(t("outcomes.incidence", term=md_escape(term)))
    df = attempt(read, "toxicity_incidence", identity, site=site, term=term)
    if empty(df, "outcomes.no_curves"):
        return
    assert df is not None
    for centre, note in df.attrs.get("notes", {}).items():
        st.info(t("outcomes.note", centre=md_escape(centre), note=md_escape(note)))
    long = df.melt(["centre", "days"], ["aalen_johansen", "one_minus_km"],
                   var_name="estimator", value_name="incidence")  # fmt: skip
    long["estimator"] = long["estimator"].map(lambda e: t(f"outcomes.{e}"))
    chart = (
        alt.Chart(long)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("days:Q", title=t("outcomes.days")),
            y=alt.Y(
                "incidence:Q", title=t("outcomes.cumulative"), axis=alt.Axis(format="%")
            ),
            color=alt.Color("centre:N", title=t("cohort.centre")),
            strokeDash=alt.StrokeDash("estimator:N", title=None),
        )
    )
    show_chart(chart, df, "toxicity-incidence")


def _prom(identity: Identity, site: str) -> None:
    st.subheader(t("outcomes.prom"))
    df = attempt(read, "prom_trajectory", identity, site=site)
    if empty(df, "outcomes.no_prom"):
        return
    assert df is not None
    scale = st.selectbox(t("outcomes.scale"), sorted(set(df["scale"])))
    one = df[df["scale"] == scale]
    base = alt.Chart(one).encode(
        x=alt.X("timepoint:N", sort=None, title=t("cohort.timepoint")),
        color=alt.Color("centre:N", title=t("cohort.centre")),
    )
    chart = base.mark_line(point=True).encode(
        y=alt.Y("mean:Q", title=t("outcomes.mean"))
    ) + base.mark_errorbar().encode(y="lower_95:Q", y2="upper_95:Q")
    show_chart(chart, one, f"prom-{scale}")
    det = attempt(read, "prom_deterioration", identity, site=site)
    st.subheader(t("outcomes.deterioration"))
    if empty(det, "outcomes.no_deterioration"):
        return
    assert det is not None
    show_table(det, "prom-deterioration", {"centre": t("cohort.centre")})


def render() -> None:
    """Show the outcome benchmarks the user may see."""
    identity = open_page("outcomes")
    st.header(t("outcomes.heading"))
    caption(identity)
    sites = attempt(read, "sites", identity)
    options = list(sites["site"]) if sites is not None else list(_SITES)
    site = str(st.selectbox(t("dose.site"), options,
                            format_func=lambda s: t(f"site.{s}")))  # fmt: skip
    term = st.text_input(t("outcomes.term"), "Pneumonitis").strip()
    if term:
        _incidence(identity, site, term)
    _prom(identity, site)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
