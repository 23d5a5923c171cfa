"""``rtcohort consent record --stage`` stores the stage; a bad one is refused."""

from __future__ import annotations

from pathlib import Path

from etl.deid.keys import load_key
from etl.deid.pseudonymise import pseudonym


def test_consent_record_with_stage(run, fresh_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cohort.consent import find_person
    from cohort.stage import stages
    from omop.engine import make_engine, session_factory

    key_file = tmp_path / "c1.key"
    run("centre", "add", "C1")
    run("keys", "new", "--centre", "C1", "--out", str(key_file))
    k = ["--centre", "C1", "--key-file", str(key_file)]
    first = ["--date", "2025-01-10", "--year-of-birth", "1950", "--sex", "F"]
    out = run("consent", "record", "H-1", *k, "--state", "consented", *first,
              "--site", "lung", "--stage", "IIIB")  # fmt: skip
    assert "consented recorded" in out
    out = run("consent", "record", "H-2", *k, "--state", "consented", *first,
              "--stage", "V", code=2)  # fmt: skip
    assert "stage: 'V' is not an overall UICC/AJCC stage group" in out
    assert "0, I, II, III, IV" in out
    out = run("consent", "record", "H-3", *k, "--state", "approached", *first,
              "--stage", "II", code=2)  # fmt: skip
    assert "stage: recorded only with a consent to data use" in out
    engine = make_engine(fresh_url)
    try:
        with session_factory(engine)() as session:
            key = load_key(key_file)
            person = find_person(session, pseudonym(key, "H-1"))
            assert person is not None
            assert find_person(session, pseudonym(key, "H-2")) is None
            assert find_person(session, pseudonym(key, "H-3")) is None
            assert stages(session, [person.person_id]) == {person.person_id: "III"}
    finally:
        engine.dispose()
