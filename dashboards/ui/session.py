"""The signed-in user of a browser session, idle expiry, and the page header.

The identity lives in ``st.session_state`` (server side, per browser tab) with the
time of the last activity; after :data:`IDLE_LIMIT` without a rerun the next rerun
signs the user out and the sign-in page says why.
"""

from __future__ import annotations

import datetime
import re

import streamlit as st

from dashboards.auth import Identity
from dashboards.messages import t

__all__ = [
    "IDLE_LIMIT",
    "current_identity",
    "md_escape",
    "render_header",
    "sign_in_as",
    "sign_out",
    "signed_in_page",
]

IDLE_LIMIT = datetime.timedelta(minutes=30)
_USER = "rtcohort.identity"
_SEEN = "rtcohort.last_seen"
_EXPIRED = "rtcohort.expired"
_SIGNED_OUT = "rtcohort.signed_out"
_MD = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: str) -> str:
    r"""Escape Markdown (and HTML) so that ``text`` is shown as typed.

    >>> md_escape("<b>x</b>")
    '\\<b\\>x\\</b\\>'
    """
    return _MD.sub(r"\\\1", text)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def sign_in_as(identity: Identity) -> None:
    """Start a signed-in session."""
    st.session_state[_USER] = identity
    st.session_state[_SEEN] = _now()
    st.session_state.pop(_EXPIRED, None)
    st.session_state.pop(_SIGNED_OUT, None)


def sign_out(*, expired: bool = False) -> None:
    """End the session (the next run shows the sign-in page)."""
    st.session_state.pop(_USER, None)
    st.session_state.pop(_SEEN, None)
    st.session_state[_EXPIRED if expired else _SIGNED_OUT] = True


def current_identity() -> Identity | None:
    """Return the signed-in identity, or None (after 30 minutes idle: signed out)."""
    identity = st.session_state.get(_USER)
    if not isinstance(identity, Identity):
        return None
    seen = st.session_state.get(_SEEN)
    now = _now()
    if not isinstance(seen, datetime.datetime) or now - seen > IDLE_LIMIT:
        sign_out(expired=True)
        return None
    st.session_state[_SEEN] = now
    return identity


def pop_notice() -> str | None:
    """Return the message the sign-in page shows once: expired, or signed out."""
    if st.session_state.pop(_EXPIRED, None):
        return t("signin.expired")
    if st.session_state.pop(_SIGNED_OUT, None):
        return t("signin.signed_out")
    return None


def render_header(identity: Identity) -> None:
    """Name, role and centre of the signed-in user, and the ``Sign out`` button."""
    centre = ", ".join(identity.centres) or t("app.no_centre")
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.markdown(
        t(
            "app.signed_in_as",
            name=md_escape(identity.username),
            role=t(f"role.{identity.role}"),
            centre=md_escape(centre),
        )
    )
    if right.button(t("app.sign_out"), key="rtcohort.sign_out"):
        sign_out()
        st.rerun()


def signed_in_page() -> Identity:
    """Start a page for signed-in users: the header, or stop when nobody is signed in.

    The shell shows these pages to signed-in users only; this covers a page script
    run any other way (and a session that expired since the navigation was built).
    """
    identity = current_identity()
    if identity is None:
        st.info(pop_notice() or t("signin.expired"))
        st.stop()
    render_header(identity)
    return identity
