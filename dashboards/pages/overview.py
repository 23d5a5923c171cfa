"""Overview: PROM completion per centre and timepoint (aggregates, audited reads)."""

from __future__ import annotations

import streamlit as st

from cohort.permissions import Action
from cohort.service import completion_report
from dashboards.messages import t
from dashboards.ui.guard import require
from dashboards.ui.resources import factory
from dashboards.ui.session import signed_in_page

__all__ = ["render"]


def render() -> None:
    """Show the completion table the user may see (others' centres anonymised)."""
    identity = signed_in_page()
    with factory().begin() as session:
        user, _scope = require(session, identity, Action.READ_AGGREGATES, "overview")
        rows = completion_report(session, user)
    st.header(t("overview.heading"))
    st.caption(t("overview.caption"))
    if not rows:
        st.info(t("overview.empty"))
        return
    st.table(
        [
            {
                t("overview.centre"): r.centre,
                t("overview.timepoint"): r.timepoint,
                t("overview.expected"): r.expected,
                t("overview.completed"): r.completed,
                t("overview.rate"): f"{r.rate:.0%}" if r.rate is not None else "-",
            }
            for r in rows
        ],
        hide_index=True,
    )


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
