"""Quarantine: the files held at the user's centres, with reasons, and retry.

The list is :func:`cohort.operations.quarantine_items` (audited). ``Retry`` runs the
items again as ``rtcohort quarantine retry`` does (through :mod:`dashboards.hooks`),
after the permission layer allowed writing at each item's centre; the centre key comes
from the key folder.
"""

from __future__ import annotations

import streamlit as st

from cohort.errors import CohortError
from cohort.operations import quarantine_items, require_centre_write
from cohort.permissions import Action
from dashboards import hooks
from dashboards.desk import show_error
from dashboards.messages import t
from dashboards.ui.guard import require
from dashboards.ui.resources import factory, key_dir
from dashboards.ui.session import md_escape, signed_in_page
from omop.errors import RTCohortError

__all__ = ["render"]


def _retry(username: str, chosen: list[int], centre_of: dict[int, str]) -> None:
    by_centre: dict[str, list[int]] = {}
    for item in chosen:
        by_centre.setdefault(centre_of[item], []).append(item)
    for centre, ids in sorted(by_centre.items()):
        try:
            with factory().begin() as session:
                require_centre_write(session, username, centre)
            folder = key_dir()
            key = folder / f"{centre}.key" if folder else None
            done = hooks.quarantine_retry(
                ids, centre, key if key and key.exists() else None, username
            )
        except hooks.HooksMissingError:
            st.warning(t("quarantine.no_hooks"))
            return
        except (CohortError, RTCohortError) as exc:
            show_error(exc)
            continue
        st.success(
            t(
                "quarantine.retried",
                centre=md_escape(centre),
                count=len(ids),
                summary=md_escape(done),
            )
        )


def render() -> None:
    """List held items with their reasons; retry the chosen ones."""
    identity = signed_in_page()
    with factory().begin() as session:
        user, _scope = require(session, identity, Action.WRITE, "quarantine")
        items = [
            (i.quarantine_id, i.centre, i.reason_code, i.reason, i.received_at)
            for i in quarantine_items(session, user)
        ]
    st.header(t("quarantine.heading"))
    st.caption(t("quarantine.caption"))
    if not items:
        st.info(t("quarantine.empty"))
        return
    st.dataframe(
        [
            {
                t("quarantine.col_id"): i,
                t("quarantine.col_centre"): c,
                t("quarantine.col_code"): code,
                t("quarantine.col_reason"): reason,
                t("quarantine.col_received"): when.isoformat(timespec="minutes"),
            }
            for i, c, code, reason, when in items
        ],
        hide_index=True,
    )
    centre_of = {i: c for i, c, *_ in items}
    chosen = st.multiselect(t("quarantine.choose"), list(centre_of))
    if st.button(t("quarantine.retry"), type="primary"):
        if not chosen:
            st.warning(t("quarantine.none_chosen"))
        else:
            _retry(identity.username, chosen, centre_of)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
