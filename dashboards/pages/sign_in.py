"""The sign-in page: user name and password, and OpenID Connect when configured."""

from __future__ import annotations

import logging

import streamlit as st

from dashboards.auth import check_password, match_oidc_account
from dashboards.messages import t
from dashboards.ui.resources import factory
from dashboards.ui.session import pop_notice, sign_in_as

__all__ = ["oidc_configured", "render"]

_LOG = logging.getLogger(__name__)


def oidc_configured() -> bool:
    """Return whether ``.streamlit/secrets.toml`` configures ``st.login``."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, OSError):
        return False


def _oidc() -> None:
    """Offer the provider's sign-in, and match a returning user by e-mail."""
    user = st.user
    if getattr(user, "is_logged_in", False):
        with factory().begin() as session:
            identity = match_oidc_account(session, user.to_dict())
        if identity is None:
            st.error(t("signin.oidc_no_account"))
            if st.button(t("app.sign_out"), key="rtcohort.oidc_out"):
                st.logout()
            return
        sign_in_as(identity)
        st.rerun()
    provider = str(st.secrets["auth"].get("provider_name", "OpenID Connect"))
    st.button(t("signin.oidc_button", provider=provider), on_click=st.login)


def render() -> None:
    """Show the sign-in form; on success start the session and rerun."""
    st.title(t("signin.heading"))
    notice = pop_notice()
    if notice:
        st.info(notice)
    with st.form("rtcohort.sign_in", enter_to_submit=True):
        username = st.text_input(t("signin.username"), autocomplete="username")
        password = st.text_input(
            t("signin.password"), type="password", autocomplete="current-password"
        )
        submitted = st.form_submit_button(t("signin.button"), type="primary")
    if submitted:
        if not username.strip() or not password:
            st.error(t("signin.missing"))
        else:
            with factory().begin() as session:
                identity = check_password(session, username, password)
            if identity is None:
                _LOG.info("sign-in refused")
                st.error(t("signin.failed"))
            else:
                _LOG.info("sign-in of %s", identity.username)
                sign_in_as(identity)
                st.rerun()
    if oidc_configured():
        st.divider()
        _oidc()


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
