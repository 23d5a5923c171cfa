"""Data completeness: required structures x patients, names, QA, quarantine.

Aggregates per centre for everyone allowed benchmarks; the patient x structure
matrix of the user's own centres for centre staff who may read patients.
"""

from __future__ import annotations

import altair as alt
import streamlit as st

from cohort.benchmark.queries_quality import REQUIRED_STRUCTURES
from cohort.users import Role
from dashboards.auth import Identity
from dashboards.messages import t
from dashboards.ui.bench import attempt, caption, empty, open_page
from dashboards.ui.cached import read
from dashboards.ui.charts import show_chart, show_table

__all__ = ["render"]

_MATRIX_ROLES = frozenset({Role.ADMIN.value, Role.DATA_MANAGER.value,
                           Role.CLINICIAN.value})  # fmt: skip


def _structures(identity: Identity, site: str) -> None:
    st.subheader(t("completeness.structures"))
    df = attempt(read, "structures", identity, site=site)
    if empty(df, "completeness.no_patients"):
        return
    assert df is not None
    long = df.melt(
        ["centre", "structure"], ["once", "more_than_once", "missing"],
        var_name="status", value_name="count",
    )  # fmt: skip
    long["status"] = long["status"].map(lambda s: t(f"completeness.status_{s}"))
    chart = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("count:Q", title=t("completeness.patients"), stack=True),
            y=alt.Y("structure:N", title=None),
            color=alt.Color("status:N", title=None),
            row=alt.Row("centre:N", title=None),
            tooltip=["centre", "structure", "status", "count"],
        )
    )
    show_chart(chart, df, f"structures-{site}")
    if identity.role in _MATRIX_ROLES:
        matrix = attempt(read, "structure_matrix", identity, site=site)
        if matrix is not None and not matrix.empty:
            st.caption(t("completeness.matrix"))
            show_table(matrix, f"structure-matrix-{site}",
                       {"pseudonym": t("completeness.pseudonym")})  # fmt: skip


def _counts(identity: Identity, name: str, columns: dict[str, str]) -> None:
    st.subheader(t(f"completeness.{name}"))
    df = attempt(read, name, identity)
    if empty(df, f"completeness.no_{name}"):
        return
    assert df is not None
    show_table(df, name, {c: t(k) for c, k in columns.items()})


def render() -> None:
    """Show the completeness views the user may see."""
    identity = open_page("completeness")
    st.header(t("completeness.heading"))
    caption(identity)
    sites = attempt(read, "sites", identity)
    options = list(sites["site"]) if sites is not None else list(REQUIRED_STRUCTURES)
    site = st.selectbox(
        t("completeness.site"), options,
        format_func=lambda s: t(f"site.{s}"),
    )  # fmt: skip
    _structures(identity, str(site))
    centre = {"centre": "cohort.centre"}
    count = {"structures": "completeness.count", "items": "completeness.count"}
    _counts(
        identity, "unmapped", centre | count | {"roi_name": "completeness.roi_name"}
    )
    qa = {"code": "completeness.code", "datasets": "completeness.datasets"}
    _counts(identity, "qa_warnings", centre | qa)
    _counts(
        identity, "quarantine", centre | count | {"reason_code": "completeness.code"}
    )


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
