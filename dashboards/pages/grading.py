"""Grading form of one patient x timepoint (``/grading?p=PSEUDONYM&tp=TIMEPOINT``).

Opened from the worklist. The treatment site's CTCAE shortlist is listed with grade 0;
a search adds any CTCAE v5.0 term; each grade shows NCI's description and only the
grades a term defines are offered. A patient without toxicity takes three actions:
open (the worklist link), confirm (the tick box), ``Save``. Reading and writing go
through :mod:`cohort.grading` (permission layer, consent gate, versions, audit). The
form's values live in ``st.session_state[FORM]`` (widgets update it); whatever is
saved is checked again by the service, so a tampered session state is refused.
"""

from __future__ import annotations

import datetime
from typing import Any

import streamlit as st

from cohort.errors import (
    ConsentRefusedError,
    ContactKeyError,
    InvalidInputError,
    PermissionDeniedError,
    UnknownPersonError,
)
from cohort.grading import (
    CTCAE_VERSION,
    CorrectionNeededError,
    GradingSheet,
    StaleGradingError,
    TermGrade,
    open_grading,
    record_grading,
)
from cohort.permissions import Action
from dashboards.grading_view import show_earlier, term_widgets
from dashboards.messages import t
from dashboards.ui.guard import refuse, require
from dashboards.ui.resources import centre_key, factory
from dashboards.ui.session import md_escape, signed_in_page
from instruments.ctcae import load_catalogue

__all__ = ["FORM", "render"]

FORM = "grading.form"
_NOTICE = "grading.notice"
_GEN = "grading.generation"
_SEARCH_RESULTS = 8


def _open(identity: Any, pseudonym: str, timepoint: str) -> GradingSheet:
    """Read the sheet (its audit record written in the same transaction)."""
    reason = ""
    with factory().begin() as session:
        user, _scope = require(session, identity, Action.WRITE, "grading")
        try:
            return open_grading(session, user, pseudonym, timepoint, key_for=centre_key)
        except PermissionDeniedError:  # audited by the permission layer
            st.error(t("refused.message"))
            st.stop()
        except (UnknownPersonError, InvalidInputError) as exc:
            reason = str(exc)
        except ContactKeyError:
            st.error(t("grading.no_key"))
            st.stop()
    refuse(identity.username, "grading", f"cannot open {timepoint}: {reason}")


def _new_form(sheet: GradingSheet) -> dict[str, Any]:
    terms = [term.meddra_code for term in sheet.shortlist]
    terms += [code for code in sheet.current if code not in terms]
    gen = int(st.session_state.get(_GEN, -1)) + 1
    st.session_state[_GEN] = gen  # fresh widget keys: nothing carries over
    return {
        "p": sheet.pseudonym,
        "tp": sheet.timepoint,
        "version": sheet.version,
        "gen": gen,
        "terms": terms,
        "grades": {
            c: sheet.current[c].grade if c in sheet.current else 0 for c in terms
        },
        "attr": {
            c: sheet.current[c].attribution if c in sheet.current else None
            for c in terms
        },
    }


def _add_term(code: str) -> None:
    form = st.session_state[FORM]
    if code not in form["terms"]:
        form["terms"].append(code)
        form["grades"][code] = 0
        form["attr"][code] = None
    st.session_state[f"grading.search{form['gen']}"] = ""


def _search(form: dict[str, Any]) -> None:
    catalogue = load_catalogue(CTCAE_VERSION)
    text = st.text_input(
        t("grading.search"),
        key=f"grading.search{form['gen']}",
        help=t("grading.search_help"),
    )
    if not text.strip():
        return
    found = [x for x in catalogue.search(text) if x.meddra_code not in form["terms"]]
    if not found:
        st.caption(t("grading.no_match"))
    for term in found[:_SEARCH_RESULTS]:
        st.button(
            t("grading.add", term=term.term),
            key=f"grading.add.{term.meddra_code}",
            on_click=_add_term,
            args=(term.meddra_code,),
        )


def _save(identity: Any, form: dict[str, Any], values: dict[str, Any]) -> None:
    gradings = [
        TermGrade(code, form["grades"][code], form["attr"].get(code))
        for code in form["terms"]
    ]
    try:
        with factory().begin() as session:
            user, _scope = require(session, identity, Action.WRITE, "grading")
            result = record_grading(
                session,
                user,
                form["p"],
                form["tp"],
                gradings,
                key_for=centre_key,
                assessed_on=values["assessed_on"],
                expected_version=form["version"],
                correction_reason=values["reason"] or None,
                note=values["note"],
            )
    except StaleGradingError:
        st.error(t("grading.stale"))
        if st.button(t("grading.reload")):
            st.session_state.pop(FORM, None)
            st.rerun()
        return
    except CorrectionNeededError as exc:
        st.error(t("grading.need_reason", terms=md_escape(", ".join(exc.terms))))
        return
    except ConsentRefusedError:
        st.error(t("grading.consent_refused"))
        return
    except PermissionDeniedError:
        st.error(t("refused.message"))
        return
    except (InvalidInputError, ContactKeyError) as exc:
        st.error(t("grading.invalid", reason=md_escape(str(exc))))
        return
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts.items()))
    st.session_state[_NOTICE] = t(
        "grading.saved", count=len(result.outcomes), outcomes=counts
    )
    st.session_state.pop(FORM, None)
    st.rerun()


def render() -> None:
    """Show the grading form of the patient and timepoint in the query parameters."""
    identity = signed_in_page()
    pseudonym = st.query_params.get("p", "").strip()
    timepoint = st.query_params.get("tp", "").strip()
    if not pseudonym or not timepoint:
        st.info(t("grading.choose"))
        st.page_link("pages/worklist.py", label=t("grading.back"))
        return
    sheet = _open(identity, pseudonym, timepoint)
    form = st.session_state.get(FORM)
    if not isinstance(form, dict) or (form["p"], form["tp"]) != (pseudonym, timepoint):
        form = st.session_state[FORM] = _new_form(sheet)
    st.page_link("pages/worklist.py", label=t("grading.back"))
    st.subheader(t("grading.heading", timepoint=md_escape(timepoint)))
    st.markdown(t("grading.patient", pseudonym=md_escape(pseudonym)))
    st.caption(
        t(
            "grading.caption",
            site=md_escape(sheet.treatment_site),
            centre=md_escape(sheet.centre),
        )
    )
    term_widgets(form, sheet)
    _search(form)
    gen = form["gen"]
    today = datetime.datetime.now().astimezone().date()
    values = {
        "assessed_on": st.date_input(
            t("grading.assessed_on"),
            value=today,
            max_value=today,
            key=f"grading.date{gen}",
        ),
        "note": st.text_area(t("grading.note"), key=f"grading.note{gen}"),
        "reason": st.text_input(
            t("grading.reason"),
            key=f"grading.reason{gen}",
            help=t("grading.reason_help"),
        )
        if sheet.current
        else "",
    }
    confirmed = st.checkbox(t("grading.confirm"), key=f"grading.confirm{gen}")
    if st.button(t("grading.save"), type="primary", key=f"grading.save{gen}"):
        if not confirmed:
            st.warning(t("grading.confirm_first"))
        else:
            _save(identity, form, values)
    notice = st.session_state.pop(_NOTICE, None)
    if notice:  # beside the button the user just pressed
        st.success(notice)
    show_earlier(sheet)


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
