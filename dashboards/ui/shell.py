"""The app shell: pages by role (``st.navigation``), the header, the sign-in gate."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from cohort.users import Role
from dashboards.config import WebConfig, WebConfigError
from dashboards.messages import t
from dashboards.ui.session import current_identity

__all__ = ["PAGES_BY_ROLE", "run"]

_HERE = Path(__file__).resolve().parent.parent / "pages"

#: page name -> title key (the page is ``pages/<name>.py``, at ``/<name>``)
_PAGES: dict[str, str] = {
    "worklist": "nav.worklist",
    "grading": "nav.grading",
    "overview": "nav.overview",
    "patients": "nav.patients",
    "consent": "nav.consent",
    "reminders": "nav.reminders",
    "quarantine": "nav.quarantine",
    "mapping": "nav.mapping",
    "projects": "nav.projects",
    "users": "nav.users",
    "cohort_overview": "nav.cohort",
    "completeness": "nav.completeness",
    "dose": "nav.dose",
    "outcomes": "nav.outcomes",
    "ntcp_explorer": "nav.ntcp_explorer",
}

#: Pages reached from another page (with query parameters), not from the menu.
_NOT_IN_MENU = frozenset({"grading"})

_DESK = ("consent", "reminders", "quarantine", "mapping")

#: The benchmark pages (aggregates; issue 16).
_BENCH = ("cohort_overview", "completeness", "dose", "outcomes")

#: The pages each role sees, in menu order (the first is its home page).
PAGES_BY_ROLE: dict[str, tuple[str, ...]] = {
    Role.ADMIN.value: ("overview", "patients", *_DESK, "projects", "users", *_BENCH),
    Role.DATA_MANAGER.value: ("overview", "patients", *_DESK, *_BENCH),
    Role.CLINICIAN.value: ("worklist", "grading", "overview", "patients", *_BENCH),
    Role.RESEARCHER.value: ("patients", "ntcp_explorer"),
    Role.VIEWER.value: ("overview", *_BENCH),
    Role.PATIENT.value: (),
}


def _no_pages() -> None:
    from dashboards.ui.session import signed_in_page

    signed_in_page()
    st.info(t("app.no_pages"))


def _configure_logging() -> None:
    root = logging.getLogger("dashboards")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def run() -> None:
    """Run one script pass of the web app."""
    _configure_logging()
    st.set_page_config(page_title=t("app.title"), layout="centered")
    try:
        WebConfig.from_env()
    except WebConfigError as exc:
        st.error(t("app.not_configured", reason=str(exc)))
        return
    identity = current_identity()
    prom_page = st.Page(_HERE / "prom.py", title=t("nav.prom"), url_path="prom")
    if identity is None:
        gate = st.Page(_HERE / "sign_in.py", title=t("nav.sign_in"),
                       url_path="signin", default=True)  # fmt: skip
        st.navigation([gate, prom_page], position="hidden").run()
        return
    names = PAGES_BY_ROLE.get(identity.role, ())
    pages = [
        st.Page(_HERE / f"{n}.py", title=t(_PAGES[n]), url_path=n, default=i == 0)
        for i, n in enumerate(names)
    ] or [st.Page(_no_pages, title=t("app.title"), url_path="home", default=True)]
    chosen = st.navigation([*pages, prom_page], position="hidden")
    menu = [p for p, n in zip(pages, names, strict=False) if n not in _NOT_IN_MENU]
    if chosen is not prom_page and len(menu) > 1:
        with st.sidebar:
            for page in menu:
                st.page_link(page)
    chosen.run()
