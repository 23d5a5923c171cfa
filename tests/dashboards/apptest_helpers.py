"""Driving the web app in-process with Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

import dashboards

APP = Path(dashboards.__file__).resolve().parent / "app.py"


def new_app(token: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    if token is not None:
        at.query_params["t"] = token
    return at


def open_link(token: str | None) -> AppTest:
    """A new browser session on ``/prom?t=TOKEN`` (AppTest starts at the home page)."""
    at = new_app(token)
    at.run()
    return at.switch_page("pages/prom.py").run()


def by_label(widgets: Any, label: str) -> Any:
    found = [w for w in widgets if w.label == label]
    assert len(found) == 1, [w.label for w in widgets]
    return found[0]


def sign_in(at: AppTest, username: str, password: str) -> AppTest:
    at.run()
    by_label(at.text_input, "Username").input(username)
    by_label(at.text_input, "Password").input(password)
    by_label(at.button, "Sign in").click()
    return at.run()


def texts(at: AppTest) -> str:
    """Everything the page shows as text (markdown, captions, alerts, headers)."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success",
                 "header", "title", "subheader"):  # fmt: skip
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)
