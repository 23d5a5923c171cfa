"""The parts of the grading form that show terms and history (see pages/grading.py)."""

from __future__ import annotations

import functools
from typing import Any

import streamlit as st

from cohort.grading import CTCAE_VERSION, GradingSheet
from dashboards.messages import t
from dashboards.ui.session import md_escape
from instruments.ctcae import Attribution, CtcaeTerm, load_catalogue

__all__ = ["grade_label", "show_earlier", "term_widgets"]

_FORM = "grading.form"


def grade_label(term: CtcaeTerm, grade: int) -> str:
    """Return the option text of a grade: number and NCI description (escaped)."""
    if grade == 0:
        return t("grading.grade_absent")
    return t(
        "grading.grade_option",
        grade=grade,
        description=md_escape(term.grade_descriptions[grade]),
    )


def _set_grade(code: str, key: str) -> None:
    st.session_state[_FORM]["grades"][code] = st.session_state[key]


def _set_attr(code: str, key: str) -> None:
    st.session_state[_FORM]["attr"][code] = st.session_state[key]


def term_widgets(form: dict[str, Any], sheet: GradingSheet) -> None:
    """One radio group per listed term (its grades only), attribution when graded."""
    catalogue = load_catalogue(CTCAE_VERSION)
    gen = form["gen"]
    for code in form["terms"]:
        term = catalogue.term(code)
        options: list[int] = list(term.allowed_grades)
        chosen = form["grades"].get(code, 0)
        key = f"grading.grade{gen}.{code}"
        st.radio(
            t("grading.grade_label", term=md_escape(term.term)),
            options,
            index=options.index(chosen) if chosen in options else 0,
            format_func=functools.partial(grade_label, term),
            key=key,
            on_change=_set_grade,
            args=(code, key),
        )
        stored = sheet.current.get(code)
        if stored is not None and stored.versions > 1:
            st.caption(
                t(
                    "grading.current_version",
                    term=md_escape(term.term),
                    version=stored.versions,
                    reasons=md_escape("; ".join(stored.reasons)),
                )
            )
        if chosen > 0:
            akey = f"grading.attr{gen}.{code}"
            choices: list[str | None] = [None, *(a.value for a in Attribution)]
            current = form["attr"].get(code)
            st.selectbox(
                t("grading.attribution", term=md_escape(term.term)),
                choices,
                index=choices.index(current) if current in choices else 0,
                format_func=lambda a: (
                    t("grading.attribution_none") if a is None else str(a).capitalize()
                ),
                key=akey,
                on_change=_set_attr,
                args=(code, akey),
            )


def show_earlier(sheet: GradingSheet) -> None:
    """Show the earlier assessments and notes (text shown as typed, escaped)."""
    st.subheader(t("grading.earlier"))
    if not sheet.earlier:
        st.caption(t("grading.earlier_empty"))
    else:
        st.dataframe(
            [
                {
                    t("grading.col_timepoint"): g.timepoint,
                    t("grading.col_term"): g.term,
                    t("grading.col_grade"): g.grade,
                    t("grading.col_attribution"): g.attribution or "",
                    t("grading.col_date"): g.assessed_on.isoformat(),
                }
                for g in sorted(sheet.earlier, key=lambda g: (g.assessed_on, g.term))
            ],
            hide_index=True,
        )
    if sheet.notes:
        st.subheader(t("grading.notes"))
        for timepoint, day, text in sheet.notes:
            st.caption(f"{md_escape(timepoint)} · {day.isoformat()}")
            st.text(text)
