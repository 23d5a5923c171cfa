"""Charts with their data: every chart gets a CSV and a PNG download.

The PNG is drawn by vl-convert (``vl-convert-python``) when the button is clicked
(a deferred download), so a page run never waits for it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import streamlit as st

from dashboards.messages import t

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = ["show_chart", "show_table"]

_SAFE = re.compile(r"[^a-z0-9_-]+")


@st.cache_data(show_spinner=False, max_entries=64)
def _png(spec: str) -> bytes:
    import vl_convert

    return bytes(vl_convert.vegalite_to_png(spec, scale=2))


def _slug(name: str) -> str:
    return _SAFE.sub("-", name.lower()).strip("-") or "chart"


def show_chart(chart: Any, data: pd.DataFrame, name: str) -> None:
    """Show an Altair ``chart`` with CSV (of ``data``) and PNG download buttons."""
    slug = _slug(name)
    st.altair_chart(chart, width="stretch")
    spec = chart.to_json()
    left, right = st.columns(2)
    left.download_button(
        t("chart.csv"), data.to_csv(index=False), file_name=f"{slug}.csv",
        mime="text/csv", key=f"csv-{slug}",
    )  # fmt: skip
    right.download_button(
        t("chart.png"), data=lambda: _png(spec), file_name=f"{slug}.png",
        mime="image/png", key=f"png-{slug}",
    )  # fmt: skip


def show_table(data: pd.DataFrame, name: str, labels: dict[str, str]) -> None:
    """Show ``data`` with translated column ``labels`` and a CSV download."""
    slug = _slug(name)
    st.dataframe(data.rename(columns=labels), hide_index=True)
    st.download_button(
        t("chart.csv"), data.to_csv(index=False), file_name=f"{slug}.csv",
        mime="text/csv", key=f"table-csv-{slug}",
    )  # fmt: skip
