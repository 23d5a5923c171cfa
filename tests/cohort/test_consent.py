from __future__ import annotations

import pytest
from cohort_helpers import D, centre, enrol
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import consent
from cohort.errors import (
    ConsentRecordedTwiceError,
    IllegalTransitionError,
    InvalidInputError,
    UnknownPersonError,
)
from omop.cdm import ObservationPeriod, Person
from omop.cohort_tables import ConsentEvent, Enrolment

ALL = ["eligible", "approached", "consented", "declined", "withdrawn"]
LEGAL = {
    ("eligible", "approached"),
    ("approached", "consented"),
    ("approached", "declined"),
    ("consented", "withdrawn"),
}


def test_first_record_creates_person_with_sex_and_year(session: Session) -> None:
    site = centre(session, "C1")
    pid = enrol(session, site, "C1-P1")
    person = session.get(Person, pid)
    assert person is not None
    assert (person.year_of_birth, person.gender_concept_id) == (1960, 8532)
    assert person.care_site_id == site.care_site_id
    period = session.scalars(
        select(ObservationPeriod).where(ObservationPeriod.person_id == pid)
    ).one()
    assert period.observation_period_start_date == D(2025, 1, 10)
    assert consent.has_consent(session, "C1-P1")
    assert consent.has_consent(session, "C1-P1", "proms")
    assert not consent.has_consent(session, "nobody")


def test_first_record_needs_sex_and_year(session: Session) -> None:
    site = centre(session, "C1")
    with pytest.raises(InvalidInputError):
        consent.record_consent(
            session,
            centre=site,
            pseudonym="C1-X",
            state="eligible",
            event_date=D(2025, 1, 1),
            actor="t",
        )


@pytest.mark.parametrize("first", ALL)
@pytest.mark.parametrize("second", ALL)
def test_state_machine(session: Session, first: str, second: str) -> None:
    site = centre(session, "C1")
    enrol(session, site, "C1-P", state=first)
    record = lambda: consent.record_consent(  # noqa: E731
        session,
        centre=site,
        pseudonym="C1-P",
        state=second,
        event_date=D(2025, 2, 1),
        actor="t",
    )
    if (first, second) in LEGAL:
        record()
        assert (
            session.get(Enrolment, consent.find_person(session, "C1-P").person_id).state
            == second
        )  # type: ignore[union-attr]
    elif first == second:
        with pytest.raises(ConsentRecordedTwiceError):
            record()
    else:
        with pytest.raises(IllegalTransitionError):
            record()


def test_history_scope_and_withdrawal_closes_period(session: Session) -> None:
    site = centre(session, "C1")
    enrol(session, site, "C1-P", state="approached", day=D(2025, 1, 1))
    consent.record_consent(
        session,
        centre=site,
        pseudonym="C1-P",
        state="consented",
        event_date=D(2025, 1, 5),
        actor="t",
        version="2.0",
        scopes=["data"],
    )
    assert consent.has_consent(session, "C1-P", "data")
    assert not consent.has_consent(session, "C1-P", "proms")
    consent.record_consent(
        session,
        centre=site,
        pseudonym="C1-P",
        state="withdrawn",
        event_date=D(2025, 6, 30),
        actor="t",
    )
    pid = consent.find_person(session, "C1-P").person_id  # type: ignore[union-attr]
    states = [e.state for e in consent.history(session, pid)]
    assert states == ["approached", "consented", "withdrawn"]
    assert session.scalars(select(ConsentEvent.consent_version)).all()[1] == "2.0"
    period = session.scalars(
        select(ObservationPeriod).where(ObservationPeriod.person_id == pid)
    ).one()
    assert period.observation_period_end_date == D(2025, 6, 30)
    assert not consent.has_consent(session, "C1-P")


def test_person_of_other_centre_is_unknown(session: Session) -> None:
    a, b = centre(session, "C1"), centre(session, "C2")
    enrol(session, a, "C1-P", state="eligible")
    with pytest.raises(UnknownPersonError):
        consent.record_consent(
            session,
            centre=b,
            pseudonym="C1-P",
            state="approached",
            event_date=D(2025, 2, 1),
            actor="t",
        )


def test_recruitment_rate(session: Session) -> None:
    a, b = centre(session, "C1"), centre(session, "C2")
    # C1: 4 eligible in January, 2 consented (one later withdrawn), 1 declined.
    enrol(session, a, "C1-1", state="consented", day=D(2025, 1, 2))
    enrol(session, a, "C1-2", state="consented", day=D(2025, 1, 3))
    enrol(session, a, "C1-3", state="declined", day=D(2025, 1, 4))
    enrol(session, a, "C1-4", state="eligible", day=D(2025, 1, 5))
    enrol(session, a, "C1-5", state="eligible", day=D(2025, 3, 5))  # other period
    consent.record_consent(
        session,
        centre=a,
        pseudonym="C1-2",
        state="withdrawn",
        event_date=D(2025, 2, 1),
        actor="t",
    )
    enrol(session, b, "C2-1", state="eligible", day=D(2025, 1, 9))
    rows = {
        r.care_site_id: r
        for r in consent.recruitment(session, D(2025, 1, 1), D(2025, 1, 31))
    }
    assert (rows[a.care_site_id].eligible, rows[a.care_site_id].consented) == (4, 2)
    assert rows[a.care_site_id].declined == 1
    assert rows[a.care_site_id].rate == pytest.approx(0.5)
    assert rows[b.care_site_id].rate == 0.0
