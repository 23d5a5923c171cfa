"""The patient's questionnaire, reached by the invitation link ``/prom?t=TOKEN``.

No sign-in: the signed link is the credential. The link is checked (not used) on
every run; expired, used, forged or closed (declined / withdrawn) links get a plain
message and nothing is stored. Answers go to the server-side draft on every change,
so a patient who leaves comes back to them; the review step precedes ``Submit``,
which stores through :func:`cohort.prom_link.submit_prom_by_link` (single use; a
failed store leaves the link and the draft as they were).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import streamlit as st

from cohort.centres import centre_codes
from cohort.contacts import date_offsets
from cohort.errors import (
    ExpiredTokenError,
    ForgedTokenError,
    InvitationError,
    NoLongerAvailableError,
    UsedTokenError,
)
from cohort.invitations import OpenInvitation, open_link
from cohort.prom_link import InvalidFormError, submit_prom_by_link
from dashboards.messages import t
from dashboards.prom_form import (
    answer_label,
    first_open_step,
    form_steps,
    item_label,
    missing_items,
)
from dashboards.ui.resources import centre_key, drafts, factory, signing_key, wording
from dashboards.ui.session import md_escape
from instruments.qlq_c30 import QLQ_C30
from instruments.scoring import ItemSpec

__all__ = ["render"]

_LOG = logging.getLogger(__name__)
_STEPS = form_steps(QLQ_C30)
_DONE = "prom.done"  # the token whose questionnaire this browser session sent
_STYLE = """<style>
div[data-testid="stRadio"] label {min-height: 44px; padding: 4px 2px;
  font-size: 1.05rem; align-items: center;}
div.stButton > button {min-height: 48px; min-width: 110px; font-size: 1.1rem;}
[data-testid="stSidebarCollapsedControl"], [data-testid="stSidebar"] {display: none;}
</style>"""
_REFUSALS: dict[type[InvitationError], str] = {
    NoLongerAvailableError: "prom.unavailable",
    UsedTokenError: "prom.used",
    ExpiredTokenError: "prom.expired",
    ForgedTokenError: "prom.invalid",
}


def _message_of(exc: InvitationError) -> str:
    for kind, key in _REFUSALS.items():
        if isinstance(exc, kind):
            return t(key)
    return t("prom.invalid")


def _answers_key(inv: OpenInvitation) -> str:
    return f"prom.answers.{inv.invitation_id}"


def _step_key(inv: OpenInvitation) -> str:
    return f"prom.step.{inv.invitation_id}"


def _sync(inv: OpenInvitation, items: Sequence[ItemSpec]) -> None:
    """Copy the radios' values of ``items`` into the answers; save the draft if new.

    Read from the widget state (not from change callbacks), so answers given while
    an earlier run was still going are never lost.
    """
    answers: dict[int, int] = st.session_state[_answers_key(inv)]
    before = dict(answers)
    for item in items:
        key = f"prom.q{item.number}"
        if key not in st.session_state:
            continue
        value = st.session_state[key]
        if value is None:
            answers.pop(item.number, None)
        else:
            answers[item.number] = int(value)
    if answers != before:
        drafts().save(inv.invitation_id, answers)


def _move(inv: OpenInvitation, by: int) -> None:
    step = int(st.session_state[_step_key(inv)])
    answers = st.session_state[_answers_key(inv)]
    if step < len(_STEPS):
        _sync(inv, _STEPS[step])
    if by > 0 and step < len(_STEPS):
        gaps = missing_items([_STEPS[step]], answers)
        if gaps and st.session_state.get("prom.warned") != step:
            st.session_state["prom.warned"] = step
            return
    st.session_state.pop("prom.warned", None)
    st.session_state[_step_key(inv)] = max(0, min(len(_STEPS), step + by))


def _step(inv: OpenInvitation, step: int, answers: dict[int, int]) -> None:
    items = _STEPS[step]
    st.progress(
        (step + 1) / (len(_STEPS) + 1),
        text=t("prom.step", step=step + 1, total=len(_STEPS) + 1),
    )
    st.caption(
        t(
            "prom.progress",
            first=items[0].number,
            last=items[-1].number,
            count=len(QLQ_C30.items),
        )
    )
    words = wording()
    lang = st.session_state.get("prom.language")
    for item in items:
        options = list(range(item.response_min, item.response_max + 1))
        chosen = answers.get(item.number)
        label = item_label(item, words, lang)
        # Shown as escaped Markdown (a leading "1." would otherwise turn into a
        # list); the radio group's accessible name is the plain label.
        st.markdown(f"**{md_escape(label)}**")
        st.radio(
            label,
            options,
            label_visibility="collapsed",
            index=options.index(chosen) if chosen in options else None,
            format_func=lambda v, it=item: answer_label(it, v),
            key=f"prom.q{item.number}",
        )
    _sync(inv, items)
    if st.session_state.get("prom.warned") == step:
        st.warning(t("prom.answer_all"))
    back, nxt = st.columns(2)
    if step > 0:
        back.button(t("prom.back"), on_click=_move, args=(inv, -1), key="prom.back")
    nxt.button(
        t("prom.next"), type="primary", on_click=_move, args=(inv, 1), key="prom.next"
    )


def _offset(inv: OpenInvitation) -> int | None:
    with factory().begin() as session:
        code = centre_codes(session).get(inv.care_site_id)
        key = centre_key(code) if code else None
        if key is None:
            return None
        return date_offsets(session, key, inv.care_site_id).get(inv.person_id)


def _submit(inv: OpenInvitation, token: str, answers: dict[int, int]) -> None:
    offset = _offset(inv)
    if offset is None:
        _LOG.error(
            "invitation %s: no date offset (centre key missing from the key folder, "
            "or no contact register entry); nothing stored",
            inv.invitation_id,
        )
        st.error(t("prom.store_failed"))
        return
    try:
        with factory().begin() as session:
            submit_prom_by_link(
                session, signing_key(), token, answers, date_offset_days=offset
            )
    except InvalidFormError as exc:
        st.error(t("prom.invalid_answers", reason=str(exc)))
        return
    except InvitationError as exc:
        st.warning(_message_of(exc))
        return
    except Exception:
        _LOG.exception("invitation %s: storing failed", inv.invitation_id)
        st.error(t("prom.store_failed"))
        return
    drafts().delete(inv.invitation_id)
    st.session_state[_DONE] = token
    st.rerun()


def _review(inv: OpenInvitation, token: str, answers: dict[int, int]) -> None:
    st.progress(
        1.0,
        text=t("prom.step", step=len(_STEPS) + 1, total=len(_STEPS) + 1),
    )
    st.subheader(t("prom.review"))
    st.write(t("prom.review_intro"))
    words = wording()
    lines = []
    for step in _STEPS:
        for item in step:
            value = answers.get(item.number)
            shown = answer_label(item, value) if value else t("prom.unanswered")
            lines.append(
                "- "
                + t(
                    "prom.review_item",
                    label=md_escape(item_label(item, words)),
                    answer=shown,
                )
            )
    st.markdown("\n".join(lines))
    gaps = missing_items(_STEPS, answers)
    if gaps:
        st.warning(t("prom.missing_before_submit", items=", ".join(map(str, gaps))))
    back, send = st.columns(2)
    back.button(t("prom.back"), on_click=_move, args=(inv, -1), key="prom.back")
    if send.button(t("prom.submit"), type="primary", key="prom.submit"):
        _submit(inv, token, answers)


def render() -> None:
    """Show the step the patient is at, the review, or a plain refusal."""
    st.markdown(_STYLE, unsafe_allow_html=True)  # constant CSS, no user data
    token = str(st.query_params.get("t", "")).strip()
    if token and st.session_state.get(_DONE) == token:
        st.header(t("prom.thanks_heading"))
        st.success(t("prom.thanks"))
        return
    if not token:
        st.info(t("prom.no_link"))
        return
    try:
        with factory().begin() as session:
            inv = open_link(session, signing_key(), token)
    except InvitationError as exc:
        _LOG.info("questionnaire link refused: %s", type(exc).__name__)
        st.info(_message_of(exc))
        return
    if _answers_key(inv) not in st.session_state:
        saved = drafts().load(inv.invitation_id)
        st.session_state[_answers_key(inv)] = saved
        st.session_state[_step_key(inv)] = first_open_step(_STEPS, saved)
    answers: dict[int, int] = st.session_state[_answers_key(inv)]
    step = int(st.session_state[_step_key(inv)])
    st.subheader(t("prom.title"))
    if step == 0:
        st.write(t("prom.intro", expires=inv.expires_at.strftime("%d %b %Y")))
    if step < len(_STEPS):
        _step(inv, step, answers)
    else:
        _review(inv, token, answers)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
