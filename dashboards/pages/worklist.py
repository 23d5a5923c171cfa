"""Worklist: the clinician's centres' patients with a CTCAE assessment due or overdue.

From the follow-up schedule (:func:`cohort.service.schedule_due`, audited), by
pseudonym and, where the contact register allows it (``read_contacts`` and the
centre key), name. Each row's button opens the grading form (``/grading?p=...&tp=...``).
"""

from __future__ import annotations

import datetime

import streamlit as st

from cohort.centres import centre_codes
from cohort.contacts import date_offsets
from cohort.permissions import Action, scope_for
from cohort.schedule import Kind, Status
from cohort.service import patient_names, schedule_due
from dashboards.messages import t
from dashboards.ui.guard import require
from dashboards.ui.resources import centre_key, factory
from dashboards.ui.session import md_escape, signed_in_page

__all__ = ["WANTED", "render"]

#: The states listed (missed assessments are the data manager's business).
WANTED = (Status.DUE, Status.OVERDUE)


def render() -> None:
    """List due and overdue toxicity assessments with a link to each form."""
    identity = signed_in_page()
    today = datetime.datetime.now().astimezone().date()
    rows: list[dict[str, object]] = []
    missing: list[str] = []
    with factory().begin() as session:
        user, scope = require(session, identity, Action.WRITE, "worklist")
        codes = centre_codes(session)
        ids = sorted(codes) if scope.centre_ids is None else sorted(scope.centre_ids)
        contacts = scope_for(session, user, Action.READ_CONTACTS).allowed
        for centre_id in ids:
            code = codes[centre_id]
            key = centre_key(code)
            if key is None:
                missing.append(code)
            items = schedule_due(
                session,
                user,
                centre_code=code,
                today=today,
                kinds=(Kind.TOXICITY,),
                key=key,
            )
            names = (
                patient_names(session, user, centre_code=code, key=key)
                if key is not None and contacts and items
                else {}
            )
            offsets = date_offsets(session, key, centre_id) if key else {}
            for item in items:
                if item.status not in WANTED:
                    continue
                shift = datetime.timedelta(days=offsets.get(item.person_id, 0))
                rows.append(
                    {
                        "pseudonym": item.pseudonym,
                        "name": names.get(item.pseudonym, ""),
                        "centre": code,
                        "timepoint": item.timepoint,
                        "status": item.status,
                        "target": item.target_date - shift if key else None,
                    }
                )
    st.header(t("worklist.heading"))
    st.caption(t("worklist.caption", today=today.isoformat()))
    for code in missing:
        st.warning(t("worklist.no_key", centre=code))
    if not rows:
        st.info(t("worklist.empty"))
        return
    rows.sort(key=lambda r: (r["status"] != Status.OVERDUE, str(r["target"])))
    for row in rows:
        who = md_escape(str(row["pseudonym"]))
        if row["name"]:
            who += " · " + md_escape(str(row["name"]))
        status = t(f"worklist.{row['status']}")
        target = row["target"]
        when = f" · {target.isoformat()}" if isinstance(target, datetime.date) else ""
        with st.container(border=True):
            st.markdown(
                f"**{who}**  \n{md_escape(str(row['timepoint']))} · {status}{when}"
            )
            label = t(
                "worklist.grade",
                pseudonym=row["pseudonym"],
                timepoint=row["timepoint"],
            )
            button = f"worklist.grade.{row['pseudonym']}.{row['timepoint']}"
            if st.button(label, key=button, width="stretch"):
                st.switch_page(
                    "pages/grading.py",
                    query_params={
                        "p": str(row["pseudonym"]),
                        "tp": str(row["timepoint"]),
                    },
                )


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
