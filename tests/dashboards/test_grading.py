"""The clinician's worklist and grading form in AppTest: what they show and refuse."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from apptest_helpers import by_label, new_app, sign_in, texts
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from web_world import PASSWORD, RT_PATIENT, World

from omop.cohort_tables import AuditRecord
from omop.engine import make_engine, session_factory

CONFIRM = "I have assessed every term listed above"
STALE = "Someone else saved this patient's assessment"


def _read(world: World, fn: Any, *args: Any) -> Any:
    engine = make_engine(world.url)
    try:
        with session_factory(engine)() as session:
            return fn(session, *args)
    finally:
        engine.dispose()


def _toxicity(world: World, hid: str, timepoint: str) -> list[dict[str, Any]]:
    from instruments.store import read_toxicity

    frame = _read(world, read_toxicity, [world.person_ids[hid]])
    return [r for r in frame.to_dict("records") if r["timepoint"] == timepoint]


def _audit(world: World, action: str) -> list[tuple[str, str]]:
    def rows(session: Any) -> list[tuple[str, str]]:
        found = session.execute(
            select(AuditRecord.actor, AuditRecord.detail).where(
                AuditRecord.action == action
            )
        ).all()
        return [(str(a), str(d)) for a, d in found]

    return list(_read(world, rows))


def _form(
    world: World, hid: str, timepoint: str, user: str = "clinician-hus"
) -> AppTest:
    at = sign_in(new_app(), user, PASSWORD)
    at.query_params["p"] = world.pseudonyms[hid]
    at.query_params["tp"] = timepoint
    return at.switch_page("pages/grading.py").run()


def _save(at: AppTest, *, confirm: bool = True) -> AppTest:
    if confirm:
        by_label(at.checkbox, CONFIRM).check()
    by_label(at.button, "Save").click()
    return at.run()


def _today() -> datetime.date:
    return datetime.datetime.now().astimezone().date()


def test_worklist_lists_due_toxicity_with_name_and_link(web: World) -> None:
    from cohort.contacts import date_offsets
    from cohort.schedule import Kind, Status, schedule
    from etl.deid.keys import load_key

    key = load_key(web.key_dir / "HUS.key", "HUS")

    def due(session: Any) -> list[tuple[str, str]]:
        site = web.person_ids[RT_PATIENT]
        from omop.cdm import Person

        person = session.get(Person, site)
        items = schedule(session, person.care_site_id, _today(), kinds=(Kind.TOXICITY,),
                         offsets=date_offsets(session, key, person.care_site_id))  # fmt: skip
        return [(i.pseudonym, i.timepoint) for i in items
                if i.status in (Status.DUE, Status.OVERDUE)]  # fmt: skip

    expected = _read(web, due)
    assert expected, "the world's RT patient has an assessment due"
    at = sign_in(new_app(), "clinician-hus", PASSWORD)
    assert not at.exception
    shown = texts(at)
    assert "Toxicity assessments due" in shown  # the clinician's home page
    assert "Name HUS\\-1001" in shown
    links = [b.label for b in at.button]
    for pseudonym, timepoint in expected:
        assert f"Grade {pseudonym} at {timepoint}" in links
    assert not any(web.pseudonyms["TAYS-2001"] in label for label in links)


def test_form_lists_shortlist_with_grades_the_terms_define(web: World) -> None:
    from instruments.ctcae import load_catalogue
    from instruments.shortlists import shortlist

    at = _form(web, "HUS-1002", "m3")
    assert not at.exception
    listed = shortlist("breast", "5.0")
    assert [r.label for r in at.radio] == [t.term for t in listed]
    pain = by_label(at.radio, "Breast pain")
    defined = load_catalogue("5.0").term("Breast pain").grades
    assert len(pain.options) == 1 + len(defined)
    assert pain.value == 0
    assert pain.options[1].endswith(
        load_catalogue("5.0").term("Breast pain").grade_descriptions[1]
    )
    for label in ("Add a CTCAE v5.0 term", "Assessment date", "Note (optional)"):
        assert by_label(at.text_input if "term" in label else
                        (at.date_input if "date" in label else at.text_area), label)  # fmt: skip
    by_label(at.text_input, "Add a CTCAE v5.0 term").input("xerostomia").run()
    by_label(at.button, "Add Dry mouth").click().run()
    assert [r.label for r in at.radio][-1] == "Dry mouth"


def test_no_toxicity_open_confirm_save_stores_grade_zero(web: World) -> None:
    from instruments.shortlists import shortlist

    before = len(_audit(web, "toxicity.record"))
    at = _form(web, RT_PATIENT, "m36")  # action 1: open
    at = _save(at)  # actions 2 and 3: confirm, save
    assert not at.exception
    assert "Saved: 11 terms" in texts(at) or "Saved:" in texts(at)
    rows = _toxicity(web, RT_PATIENT, "m36")
    assert sorted(r["term"] for r in rows) == sorted(
        t.term for t in shortlist("breast")
    )
    assert {r["grade"] for r in rows} == {0}
    shifted = _today() + datetime.timedelta(days=web.offsets[RT_PATIENT])
    assert {r["assessed_on"] for r in rows} == {shifted}
    records = _audit(web, "toxicity.record")
    assert len(records) == before + 1
    assert records[-1][0] == "clinician-hus"
    # the worklist no longer lists it
    home = sign_in(new_app(), "clinician-hus", PASSWORD)
    assert not any("at m36" in b.label for b in home.button)


def test_save_without_confirmation_stores_nothing(web: World) -> None:
    at = _save(_form(web, "HUS-1002", "m6"), confirm=False)
    assert "Tick the confirmation box first" in texts(at)
    assert _toxicity(web, "HUS-1002", "m6") == []


def test_other_centres_patient_by_url_is_refused_and_audited(web: World) -> None:
    before = len(_audit(web, "write"))
    at = _form(web, "TAYS-2001", "m3")
    assert "You do not have access to this page." in [e.value for e in at.error]
    assert not at.radio
    refusals = _audit(web, "write")
    assert len(refusals) == before + 1
    assert refusals[-1][0] == "clinician-hus"
    assert "TAYS" in refusals[-1][1]


def test_tampered_session_state_cannot_reach_another_patient(web: World) -> None:
    at = _form(web, "HUS-1002", "m12")
    at.session_state["grading.form"]["p"] = web.pseudonyms["TAYS-2001"]
    at = _save(at)
    # the form belongs to the URL's patient: a changed form is rebuilt, not saved
    assert _toxicity(web, "TAYS-2001", "m12") == []


def test_tampered_grade_the_term_lacks_is_refused(web: World) -> None:
    from instruments.ctcae import load_catalogue

    assert 4 not in load_catalogue("5.0").term("Breast pain").grades
    at = _form(web, "HUS-1002", "m24")
    form = at.session_state["grading.form"]
    code = load_catalogue("5.0").term("Breast pain").meddra_code
    form["grades"][code] = 4
    at.session_state["grading.form"] = form
    at = _save(at)
    errors = " ".join(e.value for e in at.error)
    assert "The form could not be saved" in errors
    assert "Breast pain" in errors
    assert _toxicity(web, "HUS-1002", "m24") == []


def test_markup_in_the_note_is_stored_as_text_and_shown_escaped(web: World) -> None:
    from instruments.store.notes import read_grading_notes

    note = "<script>alert('x')</script> **not bold** [link](http://x)"
    at = _form(web, "HUS-1002", "eot")
    by_label(at.text_area, "Note (optional)").input(note)
    at = _save(at)
    assert not at.exception
    notes = _read(web, read_grading_notes, web.person_ids["HUS-1002"])
    assert [n.text for n in notes if n.timepoint == "eot"] == [note]
    assert note in [x.value for x in at.text]
    assert not any("<script>" in m.value for m in at.markdown)


def test_correction_needs_a_reason_and_makes_a_version(web: World) -> None:
    from instruments.ctcae import load_catalogue
    from instruments.store import assessment_history
    from instruments.store.versions import toxicity_key

    _save(_form(web, "HUS-1002", "baseline"))
    at = _form(web, "HUS-1002", "baseline")
    by_label(at.radio, "Dermatitis radiation").set_value(1).run()
    at = _save(at)
    assert "Give a reason for the correction" in texts(at)
    stored = {r["term"]: r["grade"] for r in _toxicity(web, "HUS-1002", "baseline")}
    assert stored["Dermatitis radiation"] == 0
    by_label(at.text_input, "Reason for the correction").input("re-examined")
    by_label(at.button, "Save").click()
    at = at.run()
    assert not at.exception
    stored = {r["term"]: r["grade"] for r in _toxicity(web, "HUS-1002", "baseline")}
    assert stored["Dermatitis radiation"] == 1
    code = load_catalogue("5.0").term("Dermatitis radiation").meddra_code
    history = _read(web, assessment_history, web.person_ids["HUS-1002"], "toxicity",
                    toxicity_key("5.0", code, "baseline"))  # fmt: skip
    assert [(v.version, v.values["grade"], v.reason) for v in history] == [
        (1, 0, None),
        (2, 1, "re-examined"),
    ]


def test_second_clinician_to_save_is_told_and_nothing_overwritten(web: World) -> None:
    first = _form(web, "HUS-1002", "m60")
    second = _form(web, "HUS-1002", "m60")
    by_label(first.radio, "Breast pain").set_value(2).run()
    _save(first)
    by_label(second.radio, "Breast pain").set_value(1).run()
    second = _save(second)
    assert STALE in " ".join(e.value for e in second.error)
    stored = {r["term"]: r["grade"] for r in _toxicity(web, "HUS-1002", "m60")}
    assert stored["Breast pain"] == 2


def test_session_expiry_mid_form_keeps_what_was_saved(web: World) -> None:
    at = _form(web, "HUS-1001", "m24")
    at = _save(at)
    saved = _toxicity(web, "HUS-1001", "m24")
    assert saved
    by_label(at.radio, "Breast pain").set_value(1)
    at.session_state["rtcohort.last_seen"] = datetime.datetime.now(
        datetime.UTC
    ) - datetime.timedelta(minutes=31)
    at.run()
    assert "30 minutes" in texts(at)
    assert not at.radio
    assert _toxicity(web, "HUS-1001", "m24") == saved


@pytest.mark.parametrize("user", ["viewer-tays", "data-manager-hus", "researcher"])
def test_other_roles_have_no_grading_pages(web: World, user: str) -> None:
    at = sign_in(new_app(), user, PASSWORD)
    for page in ("pages/worklist.py", "pages/grading.py"):
        with pytest.raises(ValueError, match="Known pages"):
            at.switch_page(page)
