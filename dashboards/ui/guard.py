"""Every page asks the permission layer first; a refusal is audited and ends the run."""

from __future__ import annotations

from typing import NoReturn

import streamlit as st
from sqlalchemy.orm import Session

from cohort.audit import record_refusal
from cohort.permissions import Action, Scope, scope_for
from cohort.users import get_user
from dashboards.auth import Identity
from dashboards.messages import t
from dashboards.ui.resources import engine
from omop.cohort_tables import AppUser

__all__ = ["refuse", "require"]


def refuse(
    username: str, page: str, reason: str, session: Session | None = None
) -> NoReturn:
    """Audit the refusal, show the plain message, stop the run.

    The record is written in a transaction of its own: at once without a
    ``session``, or when the open ``session``'s transaction ends (the stop rolls
    it back). Writing it at once while a session is open would wait on that
    session's write lock (the web app's SQLite engine begins ``IMMEDIATE``).
    """
    record_refusal(session or engine(), username, f"web.{page}", reason)
    st.error(t("refused.message"))
    st.stop()


def require(
    session: Session, identity: Identity, action: Action, page: str
) -> tuple[AppUser, Scope]:
    """Return the account and its scope for ``action``, or refuse the page.

    The account is read again from the database on every run: a role changed or an
    account removed since sign-in takes effect at once.
    """
    try:
        user = get_user(session, identity.username)
    except LookupError:
        refuse(identity.username, page, "account no longer exists", session)
    scope = scope_for(session, user, action)
    if not scope.allowed:
        reason = f"{user.role} may not {action.value}"
        refuse(identity.username, page, reason, session)
    return user, scope
