"""Consent at every door: links, imports and exports read the consent of now."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cohort_helpers import centre, enrol, user
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cohort import consent, invitations, service
from cohort.centres import get_centre
from cohort.clinical_import import ImportFailedError, import_toxicity
from cohort.errors import NoLongerAvailableError
from cohort.prom_link import submit_prom_by_link
from cohort.users import get_user
from etl.deid.keys import new_key
from etl.deid.pseudonymise import pseudonym
from instruments.store import read_toxicity
from omop.cdm import Observation, SurveyConduct
from omop.cohort_tables import Invitation

KEY = bytes(range(32))
NOW = datetime.datetime(2025, 5, 1, 9, tzinfo=datetime.UTC)
ANSWERS = {i: (2 if i <= 28 else 4) for i in range(1, 31)}
DAY = datetime.date(2025, 2, 1)


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _refuse(session: Session, code: str, pseudo: str, state: str) -> None:
    consent.record_consent(
        session,
        centre=get_centre(session, code),
        pseudonym=pseudo,
        state=state,
        event_date=DAY,
        actor="test",
    )


@pytest.mark.parametrize(
    ("first", "then"), [("approached", "declined"), ("consented", "withdrawn")]
)
def test_link_issued_before_refusal_stores_nothing(
    session: Session, first: str, then: str
) -> None:
    code = f"CD{first[:2].upper()}"
    pid = enrol(session, centre(session, code), f"{code}-P", state=first)
    token = invitations.issue(session, KEY, pid, "m3", now=NOW).token
    _refuse(session, code, f"{code}-P", then)
    surveys, answers = _count(session, SurveyConduct), _count(session, Observation)
    with pytest.raises(NoLongerAvailableError) as info:
        invitations.open_link(session, KEY, token, now=NOW)
    assert str(info.value) == "this questionnaire is no longer available"
    with pytest.raises(NoLongerAvailableError, match="no longer available"):
        submit_prom_by_link(session, KEY, token, ANSWERS, now=NOW)
    with pytest.raises(NoLongerAvailableError, match="no longer available"):
        submit_prom_by_link(session, KEY, token, {**ANSWERS, 29: 9}, now=NOW)
    assert _count(session, SurveyConduct) == surveys
    assert _count(session, Observation) == answers
    used = session.scalar(select(Invitation.used_at).where(Invitation.person_id == pid))
    assert used is None


def test_open_link_shows_the_form_of_a_consented_patient(session: Session) -> None:
    pid = enrol(session, centre(session, "CDOK"), "CDOK-P")
    token = invitations.issue(session, KEY, pid, "m6", now=NOW).token
    opened = invitations.open_link(session, KEY, token, now=NOW)
    assert (opened.person_id, opened.timepoint) == (pid, "m6")
    submit_prom_by_link(session, KEY, token, ANSWERS, now=NOW)


def test_death_closes_open_links_and_refuses_new_ones(session: Session) -> None:
    """A death recorded after the link was sent: the link opens nothing (a relative
    sees the neutral message) and no new link is issued, one by one or in bulk."""
    from cohort.errors import InvalidInputError
    from cohort.invite_links import issue_links

    site = centre(session, "CDDE")
    pid = enrol(session, site, "CDDE-P")
    enrol(session, site, "CDDE-Q")
    token = invitations.issue(session, KEY, pid, "m3", now=NOW).token
    admin = user(session, "cd-dm", "data_manager", ["CDDE"])
    service.record_followup(
        session, admin, centre_code="CDDE", pseudonym="CDDE-P", death=DAY
    )
    surveys = _count(session, SurveyConduct)
    with pytest.raises(NoLongerAvailableError, match="no longer available"):
        invitations.open_link(session, KEY, token, now=NOW)
    with pytest.raises(NoLongerAvailableError, match="no longer available"):
        submit_prom_by_link(session, KEY, token, ANSWERS, now=NOW)
    assert _count(session, SurveyConduct) == surveys
    with pytest.raises(InvalidInputError, match="death is recorded"):
        invitations.issue(session, KEY, pid, "m6", now=NOW)
    kw = {"centre_code": "CDDE", "timepoint": "m6", "today": DAY,
          "signing_key": KEY, "link_base": "https://x/prom?t=", "now": NOW}  # fmt: skip
    with pytest.raises(InvalidInputError, match="CDDE-P has a recorded death"):
        issue_links(session, admin, pseudonym="CDDE-P", **kw)  # type: ignore[arg-type]
    # The living patient of the same centre still gets a link.
    batch = issue_links(session, admin, pseudonym="CDDE-Q", **kw)  # type: ignore[arg-type]
    assert [link.pseudonym for link in batch.links] == ["CDDE-Q"]


def test_toxicity_import_for_a_declined_patient_is_refused(
    session: Session, tmp_path: Path
) -> None:
    key = new_key("CDTX")
    site = centre(session, "CDTX")
    ok = enrol(session, site, pseudonym(key, "H-1"))
    no = enrol(session, site, pseudonym(key, "H-2"), state="approached")
    _refuse(session, "CDTX", pseudonym(key, "H-2"), "declined")
    path = tmp_path / "tox.csv"
    path.write_text(
        "patient_id,timepoint,assessed_on,ctcae_version,term,grade,attribution\n"
        "H-1,m3,2025-05-01,5.0,Dry mouth,2,probable\n"
        "H-2,m3,2025-05-01,5.0,Dry mouth,1,\n"
    )
    with pytest.raises(ImportFailedError) as info, session.begin_nested():
        import_toxicity(session, key, "CDTX", path, actor="admin")  # rolled back
    assert info.value.problems == [
        f"tox.csv line 3: patient {pseudonym(key, 'H-2')} has declined consent: "
        "no new data are accepted"
    ]
    assert read_toxicity(session, [ok, no]).empty


def test_export_leaves_out_withdrawn_persons_not_erased(session: Session) -> None:
    site = centre(session, "CDEX")
    kept = enrol(session, site, "CDEX-1")
    gone = enrol(session, site, "CDEX-2")
    admin = get_user(session, "admin")
    service.withdraw(
        session,
        admin,
        centre_code="CDEX",
        pseudonym="CDEX-2",
        event_date=DAY,
        erase=False,
    )
    manager = user(session, "cdex-dm", "data_manager", ["CDEX"])
    exported = {r.person_id for r in service.export_patients(session, manager)}
    assert kept in exported
    assert gone not in exported
    listed = {r.person_id for r in service.list_patients(session, manager)}
    assert gone in listed  # the centre still sees the withdrawal itself


def test_a_declined_person_can_be_erased(session: Session) -> None:
    site = centre(session, "CDER")
    enrol(session, site, "CDER-1", state="approached")
    admin = get_user(session, "admin")
    service.record_consent(
        session,
        admin,
        centre_code="CDER",
        pseudonym="CDER-1",
        state="declined",
        event_date=DAY,
    )
    result = service.withdraw(
        session,
        admin,
        centre_code="CDER",
        pseudonym="CDER-1",
        event_date=DAY,
        erase=True,
    )
    assert result.erased
    assert consent.find_person(session, "CDER-1") is None
    assert result.report is not None and result.report.rows_by_table["person"] == 1
