"""Cohort overview: recruitment funnel and rate, completion, follow-up status.

Aggregates only, through :mod:`cohort.benchmark.queries` (cached per viewer): the
viewer's own centres by code, the others anonymised with small cells suppressed.
"""

from __future__ import annotations

import datetime

import altair as alt
import streamlit as st

from dashboards.messages import t
from dashboards.ui.bench import attempt, caption, empty, open_page
from dashboards.ui.cached import read
from dashboards.ui.charts import show_chart

__all__ = ["render"]


def _period() -> tuple[datetime.date, datetime.date]:
    today = datetime.datetime.now(datetime.UTC).date()
    left, right = st.columns(2)
    start = left.date_input(t("cohort.start"), datetime.date(today.year - 5, 1, 1))
    end = right.date_input(t("cohort.end"), today)
    return start, end


def _funnel(identity: object, start: datetime.date, end: datetime.date) -> None:
    st.subheader(t("cohort.funnel"))
    df = attempt(read, "recruitment_funnel", identity, start=start, end=end)
    if empty(df, "cohort.no_recruitment"):
        return
    assert df is not None
    long = df.melt("centre", var_name="stage", value_name="persons")
    long["stage"] = long["stage"].map(lambda s: t(f"cohort.stage_{s}"))
    order = [t(f"cohort.stage_{s}") for s in df.columns[1:]]
    chart = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("stage:N", sort=order, title=None),
            y=alt.Y("persons:Q", title=t("cohort.persons")),
            color=alt.Color("centre:N", title=t("cohort.centre")),
            xOffset="centre:N",
            tooltip=["centre", "stage", "persons"],
        )
    )
    show_chart(chart, df, "recruitment-funnel")
    rate = attempt(read, "recruitment_over_time", identity, start=start, end=end)
    if rate is None or rate.empty:
        return
    st.subheader(t("cohort.rate"))
    line = (
        alt.Chart(rate)
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", title=t("cohort.month")),
            y=alt.Y("consented:Q", title=t("cohort.consented_per_month")),
            color=alt.Color("centre:N", title=t("cohort.centre")),
            tooltip=["centre", "month", "consented"],
        )
    )
    show_chart(line, rate, "recruitment-rate")


def _completion(identity: object) -> None:
    st.subheader(t("cohort.completion"))
    df = attempt(read, "completion", identity)
    if empty(df, "cohort.no_completion"):
        return
    assert df is not None
    shown = df.assign(kind=df["kind"].map(lambda k: t(f"cohort.kind_{k}")))
    chart = (
        alt.Chart(shown)
        .mark_bar()
        .encode(
            x=alt.X("timepoint:N", title=t("cohort.timepoint"), sort=None),
            y=alt.Y("rate:Q", title=t("cohort.rate_axis"), axis=alt.Axis(format="%")),
            color=alt.Color("centre:N", title=t("cohort.centre")),
            xOffset="centre:N",
            row=alt.Row("kind:N", title=None),
            tooltip=["centre", "kind", "timepoint", "expected", "completed"],
        )
    )
    show_chart(chart, df, "completion")


def _followup(identity: object) -> None:
    st.subheader(t("cohort.followup"))
    today = datetime.datetime.now(datetime.UTC).date()
    df = attempt(read, "followup", identity, today=today)
    if empty(df, "cohort.no_followup"):
        return
    assert df is not None
    long = df.melt("centre", var_name="status", value_name="persons")
    long["status"] = long["status"].map(lambda s: t(f"cohort.status_{s}"))
    chart = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("persons:Q", title=t("cohort.persons"), stack=True),
            y=alt.Y("centre:N", title=t("cohort.centre")),
            color=alt.Color("status:N", title=None),
            tooltip=["centre", "status", "persons"],
        )
    )
    show_chart(chart, df, "followup-status")


def render() -> None:
    """Show the cohort overview the user may see."""
    identity = open_page("cohort_overview")
    st.header(t("cohort.heading"))
    caption(identity)
    start, end = _period()
    if start > end:
        st.warning(t("cohort.bad_period"))
        return
    _funnel(identity, start, end)
    _completion(identity)
    _followup(identity)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
