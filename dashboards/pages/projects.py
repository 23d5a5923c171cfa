"""Projects and members (managers): create a project, add a member, attach a patient.

Through :func:`cohort.service.create_project`, ``add_project_member``
and :func:`~cohort.service.attach_to_project` (each checks ``manage`` and is audited).
"""

from __future__ import annotations

import datetime

import streamlit as st

from cohort.errors import CohortError
from cohort.permissions import Action
from cohort.projects import ProjectRole
from cohort.service import add_project_member, attach_to_project, create_project
from dashboards.auth import Identity
from dashboards.desk import show_error, today
from dashboards.messages import t
from dashboards.ui.guard import require
from dashboards.ui.resources import config, factory
from dashboards.ui.session import md_escape, signed_in_page
from omop.errors import RTCohortError

__all__ = ["render"]


def _create(identity: Identity) -> None:
    with st.form("project.create", enter_to_submit=False):
        code = st.text_input(t("projects.code"))
        name = st.text_input(t("projects.name"))
        protocol = st.text_input(t("projects.protocol"))
        controller = st.text_input(t("projects.controller"))
        expires = st.date_input(
            t("projects.expires"), value=today() + datetime.timedelta(days=365)
        )
        sent = st.form_submit_button(t("projects.create"))
    if not sent:
        return
    try:
        with factory().begin() as session:
            user, _ = require(session, identity, Action.MANAGE, "projects")
            create_project(
                session,
                user,
                code.strip(),
                name=name.strip(),
                protocol=protocol.strip(),
                data_controller=controller.strip(),
                expires_on=expires,
                today=today(),
                keys_folder=config().data_dir / "project-keys",
            )
    except (CohortError, RTCohortError, ValueError) as exc:
        show_error(exc)
        return
    st.success(t("projects.created", code=md_escape(code.strip())))


def _member(identity: Identity) -> None:
    with st.form("project.member", enter_to_submit=False):
        project = st.text_input(t("projects.project"))
        username = st.text_input(t("projects.username"))
        role = st.selectbox(t("projects.role"), [r.value for r in ProjectRole])
        sent = st.form_submit_button(t("projects.add_member"))
    if not sent:
        return
    try:
        with factory().begin() as session:
            user, _ = require(session, identity, Action.MANAGE, "projects")
            add_project_member(
                session, user, project.strip(), username.strip(), role, today=today()
            )
    except (CohortError, RTCohortError, ValueError) as exc:
        show_error(exc)
        return
    st.success(
        t(
            "projects.member_added",
            username=md_escape(username.strip()),
            project=md_escape(project.strip()),
        )
    )


def _attach(identity: Identity) -> None:
    with st.form("project.attach", enter_to_submit=False):
        project = st.text_input(t("projects.project"), key="attach.project")
        pseudonym = st.text_input(t("projects.pseudonym"))
        sent = st.form_submit_button(t("projects.attach"))
    if not sent:
        return
    try:
        with factory().begin() as session:
            user, _ = require(session, identity, Action.MANAGE, "projects")
            done = attach_to_project(
                session,
                user,
                project.strip(),
                today=today(),
                pseudonym=pseudonym.strip(),
            )
    except (CohortError, RTCohortError, ValueError) as exc:
        show_error(exc)
        return
    st.success(
        t("projects.attached", count=done.count, project=md_escape(project.strip()))
    )


def render() -> None:
    """Show the three project forms (managers only)."""
    identity = signed_in_page()
    with factory().begin() as session:
        require(session, identity, Action.MANAGE, "projects")
    st.header(t("projects.heading"))
    create, member, attach = st.tabs(
        [t("projects.tab_create"), t("projects.tab_member"), t("projects.tab_attach")]
    )
    with create:
        _create(identity)
    with member:
        _member(identity)
    with attach:
        _attach(identity)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
