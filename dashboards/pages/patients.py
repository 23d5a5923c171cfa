"""Patients: the patients the user may see (own centres, or projects; audited)."""

from __future__ import annotations

import streamlit as st

from cohort.permissions import Action
from cohort.service import list_patients
from dashboards.messages import t
from dashboards.ui.guard import require
from dashboards.ui.resources import factory
from dashboards.ui.session import signed_in_page

__all__ = ["render"]


def render() -> None:
    """List the visible patients by pseudonym (no names here)."""
    identity = signed_in_page()
    with factory().begin() as session:
        user, scope = require(session, identity, Action.READ_PATIENTS, "patients")
        rows = list_patients(session, user)
    st.header(t("patients.heading"))
    st.caption(
        t(
            "patients.caption_pseudonymised"
            if scope.pseudonymised
            else "patients.caption"
        )
    )
    if not rows:
        st.info(t("patients.empty"))
        return
    st.dataframe(
        [
            {
                t("patients.pseudonym"): r.pseudonym,
                **({} if scope.pseudonymised else {t("patients.centre"): r.centre}),
                t("patients.year_of_birth"): r.year_of_birth,
                t("patients.sex"): r.sex,
                t("patients.treatment_site"): r.treatment_site,
                t("patients.state"): r.state,
            }
            for r in rows
        ],
        hide_index=True,
    )


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
