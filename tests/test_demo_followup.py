"""The demo's deaths and withdrawals: the simulator's follow-up through cohort.service."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from cohort.consent import find_person, history
from cohort.simulate.files import _write_consent, _write_followup
from cohort.simulate.national import simulate_national
from cohort.simulate.params import SimulationParams
from etl.deid.identity import identify
from etl.deid.keys import new_key
from omop.cdm import Death
from rtcohort.demo_steps import record_consents, record_followup_events
from tests.cohort.cohort_helpers import centre, user

# seed 23, 12 patients of one centre: consented deaths and a withdrawal
_PARAMS = SimulationParams(centres=1, patients=12, seed=23)


def test_deaths_and_withdrawals_recorded_once(session: Session, tmp_path: Path) -> None:
    cohort = simulate_national(_PARAMS)
    patients = cohort.patients
    code = patients[0].centre
    key = new_key(code)
    centre(session, code)
    user(session, "demo-admin", "admin", [])
    _write_consent(tmp_path / "consent.csv", patients)
    _write_followup(tmp_path / "followup.csv", patients)
    record_consents(session, "demo-admin", code, key, tmp_path / "consent.csv")

    done = record_followup_events(
        session, "demo-admin", code, key, tmp_path / "followup.csv"
    )

    enrolled = [p for p in patients if p.consented]
    died = [
        p for p in enrolled
        if p.died_on is not None
        and (p.withdrawn_on is None or p.died_on < p.withdrawn_on)
    ]  # fmt: skip
    withdrew = [p for p in enrolled if p.withdrawn_on is not None]
    assert died and withdrew  # both paths are exercised
    assert done == {"death": len(died), "withdrawal": len(withdrew)}
    for p in patients:
        who = identify(key, p.hospital_id)
        person = find_person(session, who.pseudonym)
        if person is None:
            assert not p.consented
            continue
        death = session.get(Death, person.person_id)
        if p in died:
            assert p.died_on is not None and death is not None
            assert death.death_date == who.shift(p.died_on)  # shifted as the CLI
        else:
            assert death is None
        states = [e.state for e in history(session, person.person_id)]
        assert ("withdrawn" in states) == (p in withdrew)
    # idempotent: a second run records nothing
    again = record_followup_events(
        session, "demo-admin", code, key, tmp_path / "followup.csv"
    )
    assert again == {"death": 0, "withdrawal": 0}
