"""Users (administrators): the accounts, a new account, a personal API token.

:func:`cohort.operations.users_list` (audited), :func:`cohort.users.add_user` after
the permission layer allowed ``manage``, :func:`cohort.auth.create_token` (audited; the
token is shown once).
"""

from __future__ import annotations

import datetime

import streamlit as st

from cohort import audit
from cohort.auth import create_token
from cohort.centres import list_centres
from cohort.errors import CohortError
from cohort.operations import users_list
from cohort.permissions import Action
from cohort.users import Role, add_user
from dashboards.auth import Identity
from dashboards.desk import show_error
from dashboards.messages import t
from dashboards.ui.guard import require
from dashboards.ui.resources import factory
from dashboards.ui.session import md_escape, signed_in_page
from omop.errors import RTCohortError

__all__ = ["render"]


def _add(identity: Identity, centres: list[str]) -> None:
    with st.form("users.add", clear_on_submit=True, enter_to_submit=False):
        username = st.text_input(t("users.username"))
        role = st.selectbox(
            t("users.role"),
            [r.value for r in Role],
            format_func=lambda r: t(f"role.{r}"),
        )
        chosen = st.multiselect(t("users.centres"), centres)
        password = st.text_input(t("users.password"), type="password")
        sent = st.form_submit_button(t("users.add"))
    if not sent:
        return
    try:
        with factory().begin() as session:
            user, _ = require(session, identity, Action.MANAGE, "users")
            added = add_user(session, username.strip(), role, chosen, password)
            audit.record(
                session, user.username, "user.add", f"{added.username} role={role}"
            )
    except (CohortError, RTCohortError, ValueError) as exc:
        show_error(exc)
        return
    st.success(t("users.added", username=md_escape(username.strip())))


def _token(identity: Identity, names: list[str]) -> None:
    with st.form("users.token", enter_to_submit=False):
        username = st.selectbox(t("users.token_for"), names)
        days = st.number_input(t("users.days"), min_value=1, max_value=365, value=90)
        sent = st.form_submit_button(t("users.issue"))
    if not sent or not username:
        return
    try:
        with factory().begin() as session:
            user, _ = require(session, identity, Action.MANAGE, "users")
            issued = create_token(
                session,
                user,
                username,
                days=int(days),
                now=datetime.datetime.now(datetime.UTC),
            )
    except (CohortError, RTCohortError, ValueError) as exc:
        show_error(exc)
        return
    st.success(
        t(
            "users.issued",
            username=md_escape(issued.username),
            expires=issued.expires_at.isoformat(timespec="minutes"),
        )
    )
    st.code(issued.token, language=None)


def render() -> None:
    """List the accounts; add one; issue a token."""
    identity = signed_in_page()
    with factory().begin() as session:
        user, _ = require(session, identity, Action.MANAGE, "users")
        rows = users_list(session, user)
        centres = [str(c.care_site_source_value) for c in list_centres(session)]
    st.header(t("users.heading"))
    st.dataframe(
        [
            {
                t("users.username"): r.username,
                t("users.role"): t(f"role.{r.role}"),
                t("users.centres"): ", ".join(r.centres),
            }
            for r in rows
        ],
        hide_index=True,
    )
    st.subheader(t("users.add_heading"))
    _add(identity, centres)
    st.subheader(t("users.token_heading"))
    _token(identity, [r.username for r in rows])


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
