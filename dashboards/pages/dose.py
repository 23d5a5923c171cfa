"""Dose benchmarking: metric distribution per centre, DVH bands, the I-chart.

Per treatment site, fractionation scheme, organ and metric; physical dose or EQD2
(the EQD2 metrics stored at load, alpha/beta 3 Gy for organs at risk). Everything
through :mod:`cohort.benchmark.queries_dose`, cached per viewer.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import streamlit as st

from cohort.benchmark.queries_dose import BENCHMARK_METRICS, DEFAULT_ALPHA_BETA_GY
from dashboards.auth import Identity
from dashboards.messages import t
from dashboards.ui.bench import attempt, caption, empty, open_page
from dashboards.ui.cached import read
from dashboards.ui.charts import show_chart, show_table
from omop.errors import RTCohortError

__all__ = ["render"]

#: The widget key of the scheme choice (read before the widget is drawn).
_SCHEME = "dose.scheme"
_METRICS = ("Mean[Gy]", "Max[Gy]", "D0.03cc[Gy]", "D2%[Gy]", "D50%[Gy]",
            *(f"V{g}Gy[%]" for g in range(5, 75, 5)))  # fmt: skip


def _choices(identity: Identity) -> dict[str, Any] | None:
    sites = attempt(read, "sites", identity)
    options = list(sites["site"]) if sites is not None else list(BENCHMARK_METRICS)
    site = str(st.selectbox(t("dose.site"), options,
                            format_func=lambda s: t(f"site.{s}")))  # fmt: skip
    found = attempt(read, "dose_organs", identity, site=site)
    organs = list(found["structure"]) if found is not None else []
    if not organs:
        st.info(t("dose.no_values"))
        return None
    left, right = st.columns(2)
    structure = str(left.selectbox(t("dose.organ"), organs))
    first = dict(BENCHMARK_METRICS.get(site, ())).get(structure, "Mean[Gy]")
    metric = str(right.selectbox(t("dose.metric"), _METRICS,
                                 index=_METRICS.index(first)))  # fmt: skip
    eqd2 = st.radio(t("dose.representation"), ("physical", "eqd2"), horizontal=True,
                    format_func=lambda r: t(f"dose.{r}")) == "eqd2"  # fmt: skip
    if eqd2:
        st.caption(t("dose.eqd2_note", ab=f"{DEFAULT_ALPHA_BETA_GY:g}"))
    return {"site": site, "structure": structure, "metric": metric, "eqd2": eqd2,
            "scheme": None}  # fmt: skip


def _scheme(identity: Identity, chosen: dict[str, Any]) -> tuple[bool, str | None]:
    """Show the scheme choice: whether any patient has the metric, the scheme chosen.

    The scheme is None for all schemes.
    """
    params = {k: chosen[k] for k in ("site", "structure", "metric")}
    schemes = attempt(read, "dose_schemes", identity, **params)
    if empty(schemes, "dose.no_values"):
        return False, None
    assert schemes is not None
    everything = t("dose.all_schemes")
    scheme = st.selectbox(t("dose.scheme"), [everything, *schemes["scheme"]],
                          key=_SCHEME)  # fmt: skip
    if not chosen["eqd2"] and scheme == everything and len(schemes) > 1:
        st.info(t("dose.mixed_schemes"))
    return True, None if scheme == everything else str(scheme)


def _has_distribution(identity: Identity, chosen: dict[str, Any]) -> bool:
    """Whether the distribution has rows (False when the read fails: shown later)."""
    try:
        return not read("dose_distribution", identity, **chosen).empty
    except (RTCohortError, ValueError):  # attempt() shows it in the page's order
        return False


def _distribution(identity: Identity, chosen: dict[str, Any]) -> None:
    st.subheader(t("dose.distribution", organ=chosen["structure"],
                   metric=chosen["metric"]))  # fmt: skip
    df = attempt(read, "dose_distribution", identity, **chosen)
    if empty(df, "dose.no_values"):
        return
    assert df is not None
    shown = df.dropna(subset=["median"])
    if shown.empty:
        st.info(t("dose.suppressed"))
        show_table(df, "dose-distribution", {"centre": t("cohort.centre")})
        return
    base = alt.Chart(shown).encode(y=alt.Y("centre:N", title=t("cohort.centre")))
    chart = (
        base.mark_rule().encode(
            x=alt.X("p10:Q", title=chosen["metric"], scale=alt.Scale(zero=False)),
            x2="p90:Q",
        )
        + base.mark_bar(size=14).encode(x="q1:Q", x2="q3:Q")
        + base.mark_tick(color="black", size=14).encode(
            x="median:Q", tooltip=["centre:N", "patients:Q", "median:Q"]
        )
    )
    show_chart(chart, df, "dose-distribution")
    if len(shown) < len(df):
        st.caption(t("dose.suppressed"))


def _band(identity: Identity, chosen: dict[str, Any]) -> None:
    st.subheader(t("dose.band", organ=chosen["structure"]))
    params = {k: v for k, v in chosen.items() if k != "metric"}
    df = attempt(read, "dvh_band", identity, **params)
    if empty(df, "dose.no_dvh"):
        return
    assert df is not None
    base = alt.Chart(df).encode(
        x=alt.X("dose_gy:Q", title=t("dose.dose_axis")),
        color=alt.Color("centre:N", title=t("cohort.centre")),
    )
    chart = base.mark_area(opacity=0.25).encode(
        y=alt.Y("q1:Q", title=t("dose.volume_axis")), y2="q3:Q"
    ) + base.mark_line().encode(y="median:Q")
    show_chart(chart, df, "dvh-band")


def _control(identity: Identity, chosen: dict[str, Any]) -> None:
    st.subheader(t("dose.control"))
    df = attempt(read, "dose_over_time", identity, **chosen)
    if empty(df, "dose.no_control"):
        return
    assert df is not None
    base = alt.Chart(df).encode(x=alt.X("date:T", title=t("dose.course_start")))
    chart = (
        base.mark_line(point=True).encode(
            y=alt.Y("value:Q", title=chosen["metric"]),
            tooltip=["date", "value", "out_of_limits"],
        )
        + base.mark_line(strokeDash=[4, 4], color="gray").encode(y="ucl:Q")
        + base.mark_line(strokeDash=[4, 4], color="gray").encode(y="lcl:Q")
        + base.mark_line(color="black").encode(y="centre_line:Q")
    )
    show_chart(chart, df, "control-chart")
    st.caption(t("dose.out_of_limits", n=int(df["out_of_limits"].sum())))


def render() -> None:
    """Show the dose benchmarks the user may see."""
    identity = open_page("dose")
    st.header(t("dose.heading"))
    caption(identity)
    chosen = _choices(identity)
    if chosen is None:
        return
    # The scheme box sits above the charts but is filled after the first chart when
    # it is at 'all schemes' (the default), whose distribution needs no scheme list.
    # Containers, not st.empty: a rerun keeps their old content until replaced.
    choice, charts = st.container(), st.container()
    early = st.session_state.get(_SCHEME) in (None, t("dose.all_schemes"))
    early = early and _has_distribution(identity, chosen)
    if early:
        with charts:
            _distribution(identity, chosen)
    with choice:
        found, scheme = _scheme(identity, chosen)
    if not found:
        return
    if early and scheme is not None:  # not the predicted choice: draw it in order
        st.rerun()
    chosen["scheme"] = scheme
    with charts:
        if not early:
            _distribution(identity, chosen)
        _band(identity, chosen)
        _control(identity, chosen)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
