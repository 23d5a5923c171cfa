"""Outcome benchmarking: toxicity cumulative incidence and PROM courses per centre.

Aalen-Johansen (death competing) with 1 - Kaplan-Meier (death censored) beside it,
labelled; a funnel plot of observed/expected events by centre (case mix fitted on
all centres, optionally adjusted for dose); QLQ-C30 means by timepoint with 95%
intervals and the share deteriorating from baseline. Through
:mod:`cohort.benchmark.queries_outcome` and :mod:`~cohort.benchmark.queries_funnel`,
cached per viewer.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import streamlit as st

from cohort.benchmark import funnel_limits
from cohort.benchmark.queries_dose import BENCHMARK_METRICS
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
    hidden = 0 if df is None else int(df.attrs.get("hidden_small", 0))
    if hidden:
        st.caption(t("outcomes.incidence_hidden_small", n=hidden))
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


def _funnel_chart(df: pd.DataFrame) -> alt.LayerChart:
    top = float(df["expected"].max()) * 1.3 or 1.0
    grid = funnel_limits(np.linspace(top / 200, top, 200))
    lines = pd.concat(
        [
            grid[["expected", f"lower_{s}", f"upper_{s}"]]
            .set_axis(["expected", "lower", "upper"], axis=1)
            .assign(limits=t(f"outcomes.limit_{s}"))
            for s in ("95", "998")
        ]
    )
    base = alt.Chart(lines).encode(
        x=alt.X("expected:Q", title=t("outcomes.expected")),
        strokeDash=alt.StrokeDash("limits:N", title=None),
    )
    ratio = alt.Y("lower:Q", title=t("outcomes.ratio"))
    funnel = base.mark_line(color="gray").encode(y=ratio) + base.mark_line(
        color="gray"
    ).encode(y="upper:Q")
    one = alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule().encode(y="y:Q")
    points = (
        alt.Chart(df)
        .mark_point(filled=True, size=80)
        .encode(
            x="expected:Q",
            y="ratio:Q",
            color=alt.Color("centre:N", title=t("cohort.centre")),
            tooltip=["centre:N", "observed:Q", "expected:Q", "ratio:Q"],
        )
    )
    chart: alt.LayerChart = funnel + one + points
    return chart


def _funnel(identity: Identity, site: str, term: str) -> None:
    st.subheader(t("outcomes.funnel", term=md_escape(term)))
    st.caption(t("outcomes.funnel_help"))
    every = st.checkbox(t("outcomes.funnel_all_sites"))
    dose = None
    if st.checkbox(t("outcomes.adjust_dose")):
        pairs = BENCHMARK_METRICS.get(site, ())
        if not pairs:
            st.info(t("outcomes.no_dose_metric"))
            return
        dose = st.selectbox(t("outcomes.dose_metric"), pairs,
                            format_func=lambda p: f"{p[0]} {p[1]}")  # fmt: skip
        st.warning(t("outcomes.adjust_dose_warning"))
    df = attempt(read, "toxicity_funnel", identity, site=None if every else site,
                 term=term, dose=dose)  # fmt: skip
    if empty(df, "outcomes.no_funnel"):
        return
    assert df is not None
    dropped = ", ".join(df.attrs.get("factors_dropped", [])) or "-"
    used = ", ".join(df.attrs.get("factors_used", [])) or "-"
    st.caption(t("outcomes.funnel_factors", used=used, dropped=dropped))
    left_out = {k: v for k, v in df.attrs.get("excluded", {}).items() if v}
    if left_out:
        text = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in left_out.items())
        st.caption(t("outcomes.funnel_excluded", excluded=text))
    hidden = int(df.attrs.get("hidden_small", 0))
    if hidden:
        st.caption(t("outcomes.funnel_hidden_small", n=hidden))
    show_chart(_funnel_chart(df), df, "toxicity-funnel")


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
        _funnel(identity, site, term)
    _prom(identity, site)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
