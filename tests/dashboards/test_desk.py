"""The data manager's desk in AppTest: consent, reminders, quarantine, mapping,
projects and users; what each page shows and what it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apptest_helpers import by_label, new_app, sign_in, texts
from streamlit.testing.v1 import AppTest
from web_world import PASSWORD, RT_PATIENT, World

from dashboards.ui.session import md_escape
from omop.engine import make_engine, session_factory

HELD = "HUS-1009"  # imported before consent: held in quarantine


def _read(world: World, fn: Any, *args: Any, **kwargs: Any) -> Any:
    engine = make_engine(world.url)
    try:
        with session_factory(engine)() as session:
            return fn(session, *args, **kwargs)
    finally:
        engine.dispose()


def _page(user: str, page: str) -> AppTest:
    at = sign_in(new_app(), user, PASSWORD)
    return at.switch_page(f"pages/{page}.py").run()


def _hold_one(world: World, tmp: Path) -> None:
    """Import a patient without consent through the installation's import path."""
    from etl.ingest.run import run_import
    from rtcohort.wiring import configure_audit, ingest_options
    from tests.etl.ingest_corpus import write_patient

    folder = tmp / "held-in"
    write_patient(folder, HELD, 302)
    engine = make_engine(world.url)
    configure_audit(engine)
    try:
        options = ingest_options(
            "HUS", world.key_dir / "HUS.key", actor="data-manager-hus"
        )
        summary = run_import(session_factory(engine), [folder], options)
    finally:
        engine.dispose()
    assert summary.datasets_held == 1, summary


def _held_items(world: World) -> list[Any]:
    from etl.ingest.quarantine import list_items

    return [i for i in _read(world, list_items) if i.centre == "HUS"]


def test_quarantine_shows_reasons_retry_keeps_it_held_until_consent(
    web: World, tmp_path: Path
) -> None:
    from etl.deid.identity import identify
    from etl.deid.keys import load_key

    _hold_one(web, tmp_path)
    held = _held_items(web)
    assert held
    at = _page("data-manager-hus", "quarantine")
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["Item"]) == {i.quarantine_id for i in held}
    assert set(table["Reason"]) == {i.reason for i in held}
    by_label(at.multiselect, "Items to retry").set_value([held[0].quarantine_id])
    by_label(at.button, "Retry").click()
    at.run()
    assert "1 item(s) retried: 0 loaded" in texts(at)
    assert len(_held_items(web)) == len(held)
    # consent recorded on the consent page loads what was held
    at = _page("data-manager-hus", "consent")
    by_label(at.text_input, "Hospital identifier").input(HELD)
    by_label(at.selectbox, "Treatment site").set_value("lung")
    by_label(at.number_input, "Year of birth").set_value(1955)
    by_label(at.text_input, "Name (contact register)").input("Name <b>9</b>")
    by_label(at.selectbox, "Sex").set_value("F")
    by_label(at.button, "Record consent").click()
    at.run()
    assert not at.exception
    pseudonym = identify(load_key(web.key_dir / "HUS.key", "HUS"), HELD).pseudonym
    shown = texts(at)
    assert f"{md_escape(pseudonym)} is consented" in shown
    assert "held dataset(s) loaded" in shown
    assert _held_items(web) == []


def test_consent_form_labels_and_refusals(web: World) -> None:
    at = _page("data-manager-hus", "consent")
    labels = [w.label for w in at.text_input]
    assert "Hospital identifier" in labels
    assert by_label(at.selectbox, "Centre").options == ["HUS"]
    by_label(at.button, "Record consent").click()
    at.run()
    assert "Choose the centre and enter the hospital identifier." in texts(at)
    for user in ("viewer-tays", "clinician-hus", "researcher"):
        other = sign_in(new_app(), user, PASSWORD)
        with pytest.raises(ValueError, match="Known pages"):
            other.switch_page("pages/consent.py")


def test_reminders_list_due_proms_and_issue_a_link(web: World) -> None:
    from sqlalchemy import func, select

    from omop.cohort_tables import Invitation

    def count(session: Any) -> int:
        return int(
            session.scalar(
                select(func.count()).where(
                    Invitation.person_id == web.person_ids[RT_PATIENT]
                )
            )
        )

    before = _read(web, count)
    at = _page("data-manager-hus", "reminders")
    assert not at.exception
    pseudonym = web.pseudonyms[RT_PATIENT]
    resend = [
        b for b in at.button if b.label.startswith(f"Send a new link to {pseudonym}")
    ]
    assert resend
    resend[0].click()
    at.run()
    assert _read(web, count) == before + 1
    assert any("/prom?t=" in c.value for c in at.code)


def test_mapping_preview_counts_and_save(web: World) -> None:
    from etl.mapping.naming import normalise_name
    from etl.mapping.preview import loaded_names

    names = _read(web, loaded_names, ["HUS"])
    expected = [n for n in names if normalise_name(n.roi_name).startswith("lunga")]
    assert expected
    changed = sum(n.structures for n in expected if n.tg263_name != "Lungs")
    at = _page("data-manager-hus", "mapping")
    assert by_label(at.selectbox, "Centre of the rule").options == ["HUS"]
    by_label(at.text_input, "Local name pattern").input("lunga*").run()
    by_label(at.selectbox, "TG-263 name").set_value("Lungs").run()
    assert not at.exception
    assert f"Matches **{len(expected)}** local name(s); **{changed}**" in texts(at)
    table = at.dataframe[0].value
    assert set(table["Local name"]) == {n.roi_name for n in expected}
    by_label(at.button, "Save rule").click()
    at.run()
    assert f"{changed} structure(s) re-mapped" in texts(at)
    after = _read(web, loaded_names, ["HUS"])
    assert {n.tg263_name for n in after if n.roi_name in set(table["Local name"])} == {
        "Lungs"
    }


def test_admin_projects_and_users(web: World) -> None:
    from cohort.users import get_user

    at = _page("web-admin", "users")
    assert not at.exception
    assert "clinician-hus" in set(at.dataframe[0].value["Username"])
    by_label(at.text_input, "Username").input("new-clinician")
    by_label(at.selectbox, "Role").set_value("clinician")
    by_label(at.multiselect, "Centres").set_value(["TAYS"])
    by_label(at.text_input, "Password").input("a-long-enough-password")
    by_label(at.button, "Add user").click()
    at.run()
    assert "Account new\\-clinician created." in texts(at)
    assert _read(web, get_user, "new-clinician").role == "clinician"
    at = _page("web-admin", "projects")
    assert not at.exception
    by_label(at.text_input, "New project code").input("PRJ1")
    by_label(at.text_input, "Project name").input("Pilot")
    by_label(at.text_input, "Protocol").input("P-1")
    by_label(at.text_input, "Data controller").input("HUS")
    by_label(at.button, "Create project").click()
    at.run()
    assert "Project PRJ1 created." in texts(at)
    members = [w for w in at.text_input if w.form_id == "project.member"]
    by_label(members, "Project").input("PRJ1")
    by_label(members, "Username").input("researcher")
    by_label(at.button, "Add member").click()
    at.run()
    assert "researcher added to PRJ1." in texts(at)
    for user in ("data-manager-hus", "clinician-hus"):
        other = sign_in(new_app(), user, PASSWORD)
        for page in ("pages/users.py", "pages/projects.py"):
            with pytest.raises(ValueError, match="Known pages"):
                other.switch_page(page)
