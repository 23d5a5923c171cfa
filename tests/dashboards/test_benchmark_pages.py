"""The benchmark pages in AppTest, for every role: what they show, what they refuse."""

from __future__ import annotations

from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pytest
from apptest_helpers import by_label, new_app, sign_in, texts
from bench_world import add_outcomes
from streamlit.testing.v1 import AppTest
from web_world import PASSWORD, World

PAGES = ("overview", "cohort_overview", "completeness", "dose", "outcomes")


@pytest.fixture(scope="module")
def bench(world: World) -> World:
    return add_outcomes(world)


@pytest.fixture
def app(bench: World, monkeypatch: pytest.MonkeyPatch) -> World:
    bench.env(monkeypatch)
    return bench


def _open(username: str, page: str) -> AppTest:
    at = sign_in(new_app(), username, PASSWORD)
    assert not at.exception
    return at.switch_page(f"pages/{page}.py").run()


def _charts(at: AppTest) -> list[Any]:
    return list(at.get("vega_lite_chart"))


def _everything(at: AppTest) -> str:
    """All text, table cells and chart data of the page."""
    parts = [texts(at)]
    parts += [df.value.to_csv() for df in [*at.dataframe, *at.table]]
    parts += [str(c.proto) for c in _charts(at)]
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES)
def test_viewer_sees_own_centre_named_and_no_other_code(app: World, page: str) -> None:
    at = _open("viewer-tays", page)
    assert not at.exception
    shown = _everything(at)
    assert "TAYS" in shown
    assert "HUS" not in shown
    if page == "outcomes":  # the world has no outcome cell of 5 for a viewer
        return
    assert _charts(at) or at.dataframe, "a chart or its table"
    assert "Download data (CSV)" in [b.label for b in at.get("download_button")]
    if _charts(at):
        assert "Download picture (PNG)" in [b.label for b in at.get("download_button")]


def test_viewer_overview_shows_other_centres_anonymised(app: World) -> None:
    at = _open("viewer-tays", "cohort_overview")
    shown = _everything(at)
    assert "centre-1" in shown
    assert "Recruitment funnel" in shown
    assert "Follow-up status" in shown


def test_viewer_gets_no_patient_matrix(app: World) -> None:
    at = _open("viewer-tays", "completeness")
    assert not at.dataframe or all(
        "pseudonym" not in df.value.columns for df in at.dataframe
    )
    assert "Patients of your centres" not in texts(at)


def test_clinician_sees_only_own_centres(app: World) -> None:
    at = _open("clinician-hus", "cohort_overview")
    assert not at.exception
    shown = _everything(at)
    assert "HUS" in shown
    assert "TAYS" not in shown
    data = "\n".join([df.value.to_csv() for df in at.dataframe]
                     + [str(c.proto) for c in _charts(at)])  # fmt: skip
    assert "centre-1" not in data


def test_clinician_gets_the_matrix_of_own_patients(app: World) -> None:
    at = _open("clinician-hus", "completeness")
    assert not at.exception
    assert "Patients of your centres" in texts(at)
    matrix = next(df.value for df in at.dataframe if "Pseudonym" in df.value.columns)
    assert set(matrix["Pseudonym"]) == {
        app.pseudonyms["HUS-1001"],
        app.pseudonyms["HUS-1002"],
    }
    first = matrix[matrix["Pseudonym"] == app.pseudonyms["HUS-1001"]].iloc[0]
    assert (first["Heart"], first["A_LAD"]) == ("once", "missing")


def test_site_without_patients_gets_a_plain_message(app: World) -> None:
    at = _open("clinician-hus", "completeness")
    at.selectbox[0].set_value("prostate").run()
    assert not at.exception
    assert "No consented patients of this treatment site." in texts(at)


def test_bad_period_gets_a_plain_message(app: World) -> None:
    import datetime

    at = _open("viewer-tays", "cohort_overview")
    at.date_input[0].set_value(datetime.date(2030, 1, 1)).run()
    assert not at.exception
    assert "The start of the period is after its end." in texts(at)


@pytest.mark.parametrize("page", PAGES)
def test_researcher_has_no_benchmark_page_in_the_menu(app: World, page: str) -> None:
    at = sign_in(new_app(), "researcher", PASSWORD)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(f"pages/{page}.py")


@pytest.mark.parametrize("page", PAGES)
def test_page_script_refuses_a_researcher_and_audits(app: World, page: str) -> None:
    """The page asks the permission layer itself (a page reached another way)."""
    import datetime

    from apptest_helpers import APP
    from sqlalchemy import func, select

    from dashboards.auth import Identity
    from omop.cohort_tables import AuditRecord
    from omop.engine import make_engine, session_factory

    def refusals() -> int:
        engine = make_engine(app.url)
        with session_factory(engine)() as s:
            n = s.scalar(select(func.count()).select_from(AuditRecord).where(
                AuditRecord.action == f"web.{page}"))  # fmt: skip
        engine.dispose()
        return int(n or 0)

    before = refusals()
    at = AppTest.from_file(str(APP.parent / "pages" / f"{page}.py"), default_timeout=60)
    at.session_state["rtcohort.identity"] = Identity("researcher", "researcher", ())
    at.session_state["rtcohort.last_seen"] = datetime.datetime.now(datetime.UTC)
    at.run()
    assert not at.exception
    assert "You do not have access to this page." in [e.value for e in at.error]
    assert not _charts(at)
    assert refusals() == before + 1


@pytest.mark.parametrize("page", PAGES)
def test_admin_and_data_manager_open_the_pages(app: World, page: str) -> None:
    for user in ("web-admin", "data-manager-hus"):
        at = _open(user, page)
        assert not at.exception, (user, page)
        if page not in ("dose", "outcomes"):  # Arrow bytes; no cell of 5
            assert "HUS" in _everything(at)


def test_clinician_dose_page_shows_own_course(app: World) -> None:
    at = _open("clinician-hus", "dose")
    assert not at.exception
    shown = texts(at)
    assert "Heart Mean[Gy] by centre" in shown
    assert "Population DVH of Heart" in shown
    assert "Fewer than two patients of your own centre" in shown  # the I-chart
    assert len(_charts(at)) == 2
    at.radio[0].set_value("eqd2").run()
    assert not at.exception
    assert "EQD2 with alpha/beta 3 Gy" in texts(at)


def test_metric_no_structure_has_gets_a_plain_message(app: World) -> None:
    at = _open("clinician-hus", "dose")
    at.selectbox[1].set_value("A_LAD").run()
    assert not at.exception
    assert "No patient of this site has this metric for this organ." in texts(at)


def test_clinician_outcome_page_endpoint_without_events(app: World) -> None:
    at = _open("clinician-hus", "outcomes")
    assert not at.exception
    at.selectbox[0].set_value("breast").run()
    at.text_input[0].set_value("Dry mouth").run()
    assert not at.exception
    shown = texts(at)
    assert "1 - Kaplan-Meier" not in shown or "HUS" in shown
    assert "QLQ-C30 by timepoint" in shown
    assert _charts(at)


def _in_order(node: Any) -> list[Any]:
    """The elements of a page tree in the order the screen shows them."""
    children = getattr(node, "children", None)
    if children is None:
        return [node]
    return [e for k in sorted(children) for e in _in_order(children[k])]


def test_dose_scheme_choice_stays_above_the_charts(app: World) -> None:
    """The scheme box is drawn after the first chart but shown above it."""
    at = _open("clinician-hus", "dose")
    for scheme in ("All schemes", "60 Gy/30", "All schemes"):
        box = by_label(at.selectbox, "Fractionation scheme")
        if box.value != scheme:
            at = box.set_value(scheme).run()
        assert not at.exception
        box = by_label(at.selectbox, "Fractionation scheme")
        assert (box.value, box.options) == (scheme, ["All schemes", "60 Gy/30"])
        assert [s.value for s in at.subheader].count("Heart Mean[Gy] by centre") == 1
        assert len(_charts(at)) == 2
        shown = _in_order(at.main)
        place = {id(e): i for i, e in enumerate(shown)}
        heading = next(s for s in at.subheader if "by centre" in s.value)
        assert place[id(box)] < place[id(heading)] < place[id(_charts(at)[0])]


def test_dose_metric_nobody_has_shows_only_the_message(app: World) -> None:
    at = _open("clinician-hus", "dose")
    at = by_label(at.selectbox, "Organ").set_value("A_LAD").run()
    assert not at.exception
    assert [i.value for i in at.info] == [
        "No patient of this site has this metric for this organ."
    ]
    assert not at.subheader
    assert not _charts(at)


def test_landing_page_shows_the_suppressed_prom_completion(app: World) -> None:
    """The landing table is the PROM rows of the cohort overview's completion read."""
    from cohort.benchmark.queries import completion_by_timepoint
    from cohort.permissions import Action, scope_for
    from cohort.users import get_user
    from omop.engine import make_engine, session_factory

    engine = make_engine(app.url)
    with session_factory(engine)() as s:
        scope = scope_for(s, get_user(s, "viewer-tays"), Action.READ_AGGREGATES)
        want = completion_by_timepoint(s, scope)
        s.rollback()
    engine.dispose()
    want = want[want["kind"] == "prom"]
    at = _open("viewer-tays", "overview")
    assert not at.exception
    assert _charts(at), "the completion chart"
    table = at.table[0].value
    assert list(table["Centre"]) == list(want["centre"])
    shown = ["-" if pd.isna(e) else str(int(e)) for e in want["expected"]]
    assert list(table["Expected"]) == shown
    assert len(want) > 0
