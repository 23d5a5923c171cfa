"""Structure names: write a mapping rule, see at once what it matches, then save it.

The preview (:func:`cohort.mapping_desk.preview_mapping_rule`) lists the loaded local
names the rule matches and how many structures would get another TG-263 name; ``Save
rule`` imports it as a new rule-set version and re-maps the loaded structures
(:func:`cohort.operations.import_mapping_rules`, audited).
"""

from __future__ import annotations

import streamlit as st

from cohort.errors import CohortError
from cohort.mapping_desk import preview_mapping_rule, rule_csv
from cohort.operations import import_mapping_rules
from cohort.permissions import Action, scope_for
from dashboards.desk import centres_of, show_error
from dashboards.messages import t
from dashboards.ui.guard import require
from dashboards.ui.resources import factory
from dashboards.ui.session import md_escape, signed_in_page
from etl.mapping.naming import MatchKind, tg263_names
from omop.errors import RTCohortError

__all__ = ["render"]


def render() -> None:
    """Show the rule inputs, the live preview and ``Save rule``."""
    identity = signed_in_page()
    with factory().begin() as session:
        user, scope = require(session, identity, Action.WRITE, "mapping")
        centres: list[str | None] = list(centres_of(session, scope))
        if scope_for(session, user, Action.MANAGE).allowed:
            centres = [None, *centres]
    st.header(t("mapping.heading"))
    st.caption(t("mapping.caption"))
    centre = st.selectbox(
        t("mapping.centre"), centres, format_func=lambda c: c or t("mapping.global")
    )
    pattern = st.text_input(t("mapping.pattern"), help=t("mapping.pattern_help"))
    kind = st.selectbox(t("mapping.kind"), [k.value for k in MatchKind], index=1)
    target = st.selectbox(
        t("mapping.target"),
        list(tg263_names()),
        index=None,
        placeholder=t("mapping.target_placeholder"),
    )
    if not pattern.strip() or not target:
        st.info(t("mapping.fill_in"))
        return
    text = rule_csv(centre, pattern.strip(), kind, target)
    try:
        with factory().begin() as session:
            user, _scope = require(session, identity, Action.WRITE, "mapping")
            _rule, preview = preview_mapping_rule(session, user, text)
    except (CohortError, RTCohortError) as exc:
        show_error(exc)
        return
    st.subheader(t("mapping.preview"))
    st.markdown(
        t(
            "mapping.summary",
            names=len(preview.matched),
            structures=preview.structures_remapped,
        )
    )
    if preview.matched:
        new = {(n.centre, n.roi_name): m for n, m in preview.remapped}
        st.dataframe(
            [
                {
                    t("mapping.col_centre"): n.centre,
                    t("mapping.col_name"): n.roi_name,
                    t("mapping.col_count"): n.structures,
                    t("mapping.col_now"): n.tg263_name or "",
                    t("mapping.col_then"): new.get((n.centre, n.roi_name), n.tg263_name)
                    or "",
                }
                for n in preview.matched
            ],
            hide_index=True,
        )
    if st.button(t("mapping.save"), type="primary"):
        try:
            with factory().begin() as session:
                user, _scope = require(session, identity, Action.WRITE, "mapping")
                rule, _preview = preview_mapping_rule(session, user, text)
                done = import_mapping_rules(
                    session, user, [rule], source="web", text=text
                )
        except (CohortError, RTCohortError) as exc:
            show_error(exc)
            return
        st.success(
            t(
                "mapping.saved",
                version=done.version,
                changed=done.report.structures_changed,
                pattern=md_escape(pattern.strip()),
            )
        )


if __name__ == "__main__":  # run as a page script by st.navigation
    render()
