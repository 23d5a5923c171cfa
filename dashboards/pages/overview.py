"""Overview (the landing page): PROM completion per centre and timepoint.

The PROM rows of the cohort overview's completion read
(:func:`cohort.benchmark.queries.completion_by_timepoint`, cached per viewer and
audited): the viewer's own centres by code, the others anonymised with small cells
suppressed, as on every page that shows other centres. A chart and the table of the
same rows; the chart also loads the browser's chart library while the user reads
the landing page, so the first benchmark page opened draws without that wait.
"""

from __future__ import annotations

import altair as alt
import pandas as pd  # type: ignore[import-untyped]
import streamlit as st

from dashboards.messages import t
from dashboards.ui.bench import attempt, caption, open_page
from dashboards.ui.cached import read
from dashboards.ui.charts import show_chart

__all__ = ["render"]


def _count(value: object) -> str:
    """Return a count as the table shows it (``-``: withheld, a small cell)."""
    return "-" if pd.isna(value) else str(int(value))  # type: ignore[call-overload]


def render() -> None:
    """Show the PROM completion the user may see."""
    identity = open_page("overview")
    st.header(t("overview.heading"))
    st.caption(t("overview.caption"))
    caption(identity)
    df = attempt(read, "completion", identity)
    if df is None:
        return
    prom = df[df["kind"] == "prom"].drop(columns="kind").reset_index(drop=True)
    if prom.empty:
        st.info(t("overview.empty"))
        return
    chart = (
        alt.Chart(prom.dropna(subset=["rate"]))
        .mark_bar()
        .encode(
            x=alt.X("timepoint:N", title=t("overview.timepoint"), sort=None),
            y=alt.Y("rate:Q", title=t("overview.rate"), axis=alt.Axis(format="%")),
            color=alt.Color("centre:N", title=t("overview.centre")),
            xOffset="centre:N",
            tooltip=["centre:N", "timepoint:N", "expected:Q", "completed:Q"],
        )
    )
    show_chart(chart, prom, "prom-completion")
    st.table(
        [
            {
                t("overview.centre"): r.centre,
                t("overview.timepoint"): r.timepoint,
                t("overview.expected"): _count(r.expected),
                t("overview.completed"): _count(r.completed),
                t("overview.rate"): "-" if pd.isna(r.rate) else f"{r.rate:.0%}",
            }
            for r in prom.itertuples()
        ],
        hide_index=True,
    )
    if prom["expected"].isna().any():
        st.caption(t("overview.suppressed"))


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
