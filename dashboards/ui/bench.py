"""What every benchmark page does first: the header, the permission check, errors.

A bad choice (a site without data, a metric no structure has) and a refusal end as a
plain message on the page, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st

from cohort.errors import CohortError, PermissionDeniedError
from cohort.permissions import Action
from dashboards.auth import Identity
from dashboards.messages import t
from dashboards.ui.guard import require
from dashboards.ui.resources import factory
from dashboards.ui.session import md_escape, signed_in_page
from omop.errors import RTCohortError

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = ["attempt", "caption", "empty", "open_page"]

_T = TypeVar("_T")


def open_page(page: str, action: Action = Action.READ_AGGREGATES) -> Identity:
    """Show the header and stop unless the permission layer allows ``action``."""
    identity = signed_in_page()
    with factory().begin() as session:
        require(session, identity, action, page)
    return identity


def caption(identity: Identity) -> None:
    """Say whose centres the page shows and how (others anonymised, or own only)."""
    sees_all = identity.role in ("viewer", "admin")
    st.caption(t("bench.anonymised" if sees_all else "bench.own_only"))


def attempt(read: Callable[..., _T], *args: Any, **kwargs: Any) -> _T | None:
    """Run ``read``; on bad input or a refusal show the plain reason, return None."""
    try:
        return read(*args, **kwargs)
    except PermissionDeniedError:
        st.error(t("refused.message"))
    except (CohortError, RTCohortError, ValueError) as exc:
        st.warning(t("bench.bad_input", reason=md_escape(str(exc))))
    return None


def empty(df: pd.DataFrame | None, key: str) -> bool:
    """Say ``key``'s message when there is nothing to show; return whether empty."""
    if df is None:
        return True
    if df.empty:
        st.info(t(key))
        return True
    return False
