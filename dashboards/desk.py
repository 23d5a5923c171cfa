"""What the data manager's pages share: the centres a user may write, plain errors."""

from __future__ import annotations

import datetime

import streamlit as st
from sqlalchemy.orm import Session

from cohort.centres import centre_codes
from cohort.permissions import Scope
from dashboards.messages import t
from dashboards.ui.session import md_escape

__all__ = ["centres_of", "show_error", "today"]


def centres_of(session: Session, scope: Scope) -> list[str]:
    """Return the codes of the centres ``scope`` covers (all for None), sorted."""
    codes = centre_codes(session)
    ids = codes if scope.centre_ids is None else scope.centre_ids
    return sorted(codes[i] for i in ids if i in codes)


def show_error(exc: Exception) -> None:
    """Show a refused or invalid action in one plain, escaped sentence."""
    st.error(t("desk.failed", reason=md_escape(str(exc))))


def today() -> datetime.date:
    """Return the server's local date."""
    return datetime.datetime.now().astimezone().date()
