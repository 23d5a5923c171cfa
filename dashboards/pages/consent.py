"""Consent and enrolment entry: the rules of ``rtcohort consent record``.

The hospital identifier is pseudonymised with the centre key from the key folder (it
is never stored or logged); the consent date is shifted by the patient's date offset
like every date; the contact register entry is written with the key. A consent loads
the data held for want of it; a decline or withdrawal deletes the held files
(:mod:`dashboards.hooks`). Writes go through :func:`cohort.service.record_consent`.
"""

from __future__ import annotations

import datetime

import streamlit as st

from cohort.consent import ConsentScope, ConsentState, Sex, TreatmentSite
from cohort.contacts import ContactDetails
from cohort.errors import CohortError
from cohort.permissions import Action
from cohort.service import record_consent
from cohort.stage import STAGE_GROUPS
from dashboards import hooks
from dashboards.desk import centres_of, show_error, today
from dashboards.messages import t
from dashboards.ui.guard import require
from dashboards.ui.resources import centre_key, config, factory
from dashboards.ui.session import md_escape, signed_in_page
from etl.deid.identity import identify
from omop.errors import RTCohortError

__all__ = ["render"]


def _after(state: str, centre: str, actor: str) -> None:
    try:
        if state == ConsentState.CONSENTED:
            loaded = hooks.after_consent(centre, actor)
            if loaded:
                st.info(t("consent.held_loaded", count=loaded))
        elif state in (ConsentState.DECLINED, ConsentState.WITHDRAWN):
            hooks.after_refusal()
    except hooks.HooksMissingError:
        st.warning(t("consent.no_hooks"))


def render() -> None:
    """Show the consent form; record the state on ``Record consent``."""
    identity = signed_in_page()
    with factory().begin() as session:
        _user, scope = require(session, identity, Action.WRITE, "consent")
        centres = centres_of(session, scope)
    st.header(t("consent.heading"))
    st.caption(t("consent.caption"))
    with st.form("consent", clear_on_submit=True, enter_to_submit=False):
        centre = st.selectbox(t("consent.centre"), centres)
        hospital_id = st.text_input(t("consent.hospital_id"), type="password")
        state = st.selectbox(
            t("consent.state"), [s.value for s in ConsentState], index=2
        )
        day = st.date_input(t("consent.date"), value=today(), max_value=today())
        version = st.text_input(t("consent.version"))
        scopes = st.multiselect(
            t("consent.scopes"),
            [s.value for s in ConsentScope],
            default=[s.value for s in ConsentScope],
        )
        year = st.number_input(
            t("consent.year_of_birth"),
            min_value=1900,
            max_value=today().year,
            value=None,
            step=1,
        )
        sex = st.selectbox(
            t("consent.sex"),
            [None, *(s.value for s in Sex)],
            format_func=lambda s: s or t("consent.not_given"),
        )
        site = st.selectbox(
            t("consent.site"),
            [None, *(s.value for s in TreatmentSite)],
            format_func=lambda s: s or t("consent.not_given"),
        )
        stage = st.selectbox(
            t("consent.stage"),
            [None, *STAGE_GROUPS],
            format_func=lambda s: s or t("consent.not_given"),
            help=t("consent.stage_help"),
        )
        name = st.text_input(t("consent.name"))
        email = st.text_input(t("consent.email"))
        phone = st.text_input(t("consent.phone"))
        sent = st.form_submit_button(t("consent.submit"), type="primary")
    if not sent:
        return
    if not centre or not hospital_id.strip():
        st.error(t("consent.missing"))
        return
    key = centre_key(centre)
    if key is None:
        st.error(t("consent.no_key", centre=md_escape(centre)))
        return
    who = identify(key, hospital_id.strip())
    offset = who.date_offset_days or 0
    try:
        with factory().begin() as session:
            user, _scope = require(session, identity, Action.WRITE, "consent")
            event = record_consent(
                session,
                user,
                centre_code=centre,
                pseudonym=who.pseudonym,
                state=state,
                event_date=day + datetime.timedelta(days=offset),
                version=version.strip() or None,
                scopes=scopes or None,
                year_of_birth=int(year) if year is not None else None,
                sex=sex,
                site=site,
                stage=stage,
                key=key,
                contact=ContactDetails(
                    name=name.strip() or None,
                    email=email.strip() or None,
                    phone=phone.strip() or None,
                    date_offset_days=who.date_offset_days,
                ),
                data_dir=config().data_dir,
            )
            recorded = str(event.state)
    except (CohortError, RTCohortError, ValueError) as exc:
        show_error(exc)
        return
    st.success(
        t("consent.recorded", pseudonym=md_escape(who.pseudonym), state=recorded)
    )
    _after(recorded, centre, identity.username)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
