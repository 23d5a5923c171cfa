"""PROM reminders: the questionnaires due, overdue or missed at the user's centres.

From the schedule (:func:`cohort.service.schedule_due`, audited). ``Send a new link``
issues a fresh single-use link for that patient and timepoint
(:func:`cohort.invite_links.issue_links`, audited as ``invitations.print``) and shows
it to pass on by SMS, phone or paper; the link base is ``RTCOHORT_LINK_BASE`` (as for
``rtcohort invite``), else this server's ``/prom?t=``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import streamlit as st

from cohort.errors import CohortError
from cohort.invite_links import issue_links
from cohort.permissions import Action
from cohort.schedule import Kind, Status
from cohort.service import schedule_due
from dashboards.desk import centres_of, show_error, today
from dashboards.messages import t
from dashboards.ui.guard import require
from dashboards.ui.resources import centre_key, factory, signing_key
from dashboards.ui.session import md_escape, signed_in_page

__all__ = ["link_base", "render"]

_LISTED = (Status.DUE, Status.OVERDUE, Status.MISSED)


def link_base() -> str:
    """Return the base URL a token is appended to."""
    configured = os.environ.get("RTCOHORT_LINK_BASE", "").strip()
    if configured:
        return configured
    parts = urlsplit(str(st.context.url or "http://localhost:8501/"))
    return f"{parts.scheme}://{parts.netloc}/prom?t="


def _resend(identity_name: str, centre: str, pseudonym: str, timepoint: str) -> None:
    try:
        with factory().begin() as session:
            from cohort.users import get_user

            user = get_user(session, identity_name)
            batch = issue_links(
                session,
                user,
                centre_code=centre,
                timepoint=timepoint,
                today=today(),
                signing_key=signing_key(),
                link_base=link_base(),
                key=centre_key(centre),
                pseudonym=pseudonym,
            )
    except (CohortError, LookupError) as exc:
        show_error(exc)
        return
    for link in batch.links:
        st.success(
            t(
                "reminders.issued",
                pseudonym=md_escape(link.pseudonym),
                expires=link.expires.isoformat(timespec="minutes"),
            )
        )
        st.code(link.url, language=None)


def render() -> None:
    """List due, overdue and missed PROMs, with a new link per row."""
    identity = signed_in_page()
    rows = []
    with factory().begin() as session:
        user, scope = require(session, identity, Action.WRITE, "reminders")
        for centre in centres_of(session, scope):
            items = schedule_due(
                session,
                user,
                centre_code=centre,
                today=today(),
                kinds=(Kind.PROM,),
                key=centre_key(centre),
            )
            rows += [(centre, i) for i in items if i.status in _LISTED]
    st.header(t("reminders.heading"))
    st.caption(t("reminders.caption", today=today().isoformat()))
    if not rows:
        st.info(t("reminders.empty"))
        return
    order = {Status.MISSED: 0, Status.OVERDUE: 1, Status.DUE: 2}
    rows.sort(key=lambda r: (order[r[1].status], r[1].pseudonym))
    for centre, item in rows:
        left, right = st.columns([3, 2], vertical_alignment="center")
        left.markdown(
            f"**{md_escape(item.pseudonym)}** · {md_escape(centre)}  \n"
            f"{md_escape(item.timepoint)} · {t('reminders.' + item.status.value)}"
        )
        label = t(
            "reminders.resend", pseudonym=item.pseudonym, timepoint=item.timepoint
        )
        if right.button(label, key=f"resend.{item.pseudonym}.{item.timepoint}"):
            _resend(identity.username, centre, item.pseudonym, item.timepoint)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
