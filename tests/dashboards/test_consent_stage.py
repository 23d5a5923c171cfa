"""The consent form records the overall stage (AppTest, through the real page)."""

from __future__ import annotations

from apptest_helpers import by_label, new_app, sign_in, texts
from web_world import PASSWORD, World

from dashboards.ui.session import md_escape
from omop.engine import make_engine, session_factory

NEW = "HUS-7701"


def test_consent_form_records_a_stage(web: World) -> None:
    from cohort.consent import find_person
    from cohort.stage import stages
    from etl.deid.identity import identify
    from etl.deid.keys import load_key

    at = sign_in(new_app(), "data-manager-hus", PASSWORD)
    at = at.switch_page("pages/consent.py").run()
    stage = by_label(at.selectbox, "Overall stage (UICC/AJCC)")
    assert stage.options == ["Not given", "0", "I", "II", "III", "IV"]
    for label in ("Treatment site", "Sex", "Consent state", "Centre"):
        assert by_label(at.selectbox, label) is not None  # existing fields kept
    by_label(at.text_input, "Hospital identifier").input(NEW)
    by_label(at.selectbox, "Treatment site").set_value("head_neck")
    by_label(at.number_input, "Year of birth").set_value(1961)
    by_label(at.selectbox, "Sex").set_value("M")
    stage.set_value("III")
    by_label(at.button, "Record consent").click()
    at.run()
    assert not at.exception
    pseudo = identify(load_key(web.key_dir / "HUS.key", "HUS"), NEW).pseudonym
    assert f"{md_escape(pseudo)} is consented" in texts(at)
    engine = make_engine(web.url)
    try:
        with session_factory(engine)() as session:
            person = find_person(session, pseudo)
            assert person is not None
            assert stages(session, [person.person_id]) == {person.person_id: "III"}
    finally:
        engine.dispose()


def test_consent_form_refuses_a_stage_without_consent(web: World) -> None:
    at = sign_in(new_app(), "data-manager-hus", PASSWORD)
    at = at.switch_page("pages/consent.py").run()
    by_label(at.text_input, "Hospital identifier").input("HUS-7702")
    by_label(at.selectbox, "Consent state").set_value("approached")
    by_label(at.number_input, "Year of birth").set_value(1961)
    by_label(at.selectbox, "Sex").set_value("F")
    by_label(at.selectbox, "Overall stage (UICC/AJCC)").set_value("II")
    by_label(at.button, "Record consent").click()
    at.run()
    assert not at.exception
    assert md_escape("stage: recorded only with a consent to data use") in texts(at)
