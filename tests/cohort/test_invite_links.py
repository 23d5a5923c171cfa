"""Links without e-mail (`invite --print`, `--pseudonym`) and checking a link unused."""

from __future__ import annotations

import datetime
import json

import pytest
from cohort_helpers import D, centre, enrol, rt_course, user
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cohort import consent, invitations
from cohort.errors import (
    InvalidInputError,
    PermissionDeniedError,
    UsedTokenError,
)
from cohort.invite_links import issue_links
from omop.cohort_tables import AuditPerson, AuditRecord, Invitation, OutboxMessage

KEY = bytes(range(32))
BASE = "https://prom.example/prom?t="
START, END = D(2025, 1, 6), D(2025, 2, 14)
M3_TARGET = END + datetime.timedelta(days=91)
NOW = datetime.datetime(2025, 5, 16, 8, tzinfo=datetime.UTC)


def _world(session: Session) -> dict[str, int]:
    site = centre(session, "IL1")
    centre(session, "IL2")
    people = {p: enrol(session, site, p) for p in ("IL1-A", "IL1-B", "IL1-C")}
    rt_course(session, people["IL1-A"], START, END)
    rt_course(session, people["IL1-B"], START, END)
    enrol(session, site, "IL1-D", state="declined")
    return people


def test_print_issues_due_links_as_json_without_email(session: Session) -> None:
    people = _world(session)
    actor = user(session, "il-dm", "data_manager", ["IL1"])
    outbox_before = session.scalar(select(func.count()).select_from(OutboxMessage))
    batch = issue_links(
        session, actor, centre_code="IL1", timepoint="m3", today=M3_TARGET,
        signing_key=KEY, link_base=BASE, now=NOW,
    )  # fmt: skip
    assert batch.warnings == []
    assert sorted(link.pseudonym for link in batch.links) == ["IL1-A", "IL1-B"]
    for link in batch.links:
        row = json.loads(link.as_json())
        assert set(row) == {"pseudonym", "timepoint", "url", "expires"}
        assert row["timepoint"] == "m3"
        assert row["url"].startswith(BASE)
        expires = datetime.datetime.fromisoformat(row["expires"])
        assert expires.utcoffset() == datetime.timedelta(0)
        assert expires == NOW + datetime.timedelta(days=28)
        token = row["url"][len(BASE) :]
        opened = invitations.open_link(session, KEY, token, now=NOW)
        assert opened.person_id == people[row["pseudonym"]]
    # No e-mail queued; audited like a send, with the persons.
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == (
        outbox_before
    )
    record = session.scalars(
        select(AuditRecord).where(AuditRecord.action == "invitations.print")
    ).one()
    assert record.actor == "il-dm"
    persons = set(
        session.scalars(
            select(AuditPerson.person_id).where(
                AuditPerson.record_id == record.record_id
            )
        )
    )
    assert persons == {people["IL1-A"], people["IL1-B"]}
    # A second run finds the open links and issues none.
    again = issue_links(
        session, actor, centre_code="IL1", timepoint="m3", today=M3_TARGET,
        signing_key=KEY, link_base=BASE, now=NOW,
    )  # fmt: skip
    assert again.links == []


def test_one_patient_outside_the_window_gets_a_link_and_a_warning(
    session: Session,
) -> None:
    people = _world(session)
    actor = user(session, "il-cl", "clinician", ["IL1"])
    batch = issue_links(
        session, actor, centre_code="IL1", timepoint="m3", today=M3_TARGET,
        signing_key=KEY, link_base=BASE, pseudonym="IL1-C", now=NOW,
    )  # fmt: skip
    assert [link.pseudonym for link in batch.links] == ["IL1-C"]
    assert "outside the window" in batch.warnings[0]
    count = session.scalar(
        select(func.count())
        .select_from(Invitation)
        .where(Invitation.person_id == people["IL1-C"])
    )
    assert count == 1


def test_one_patient_refusals(session: Session) -> None:
    _world(session)
    actor = user(session, "il-dm2", "data_manager", ["IL1"])
    other = user(session, "il2-dm", "data_manager", ["IL2"])
    viewer = user(session, "il-view", "viewer", ["IL1"])
    kw = {"centre_code": "IL1", "timepoint": "m3", "today": M3_TARGET, "signing_key": KEY,
              "link_base": BASE, "now": NOW}  # fmt: skip
    with pytest.raises(InvalidInputError, match="declined"):
        issue_links(session, actor, pseudonym="IL1-D", **kw)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="unknown timepoint"):
        issue_links(session, actor, **{**kw, "timepoint": "m4"})  # type: ignore[arg-type]
    for who in (other, viewer):
        with pytest.raises(PermissionDeniedError):
            issue_links(session, who, **kw)  # type: ignore[arg-type]


def test_open_link_checks_without_using(session: Session) -> None:
    people = _world(session)
    token = invitations.issue(session, KEY, people["IL1-A"], "m3", now=NOW).token
    first = invitations.open_link(session, KEY, token, now=NOW)
    second = invitations.open_link(session, KEY, token, now=NOW)
    assert first == second
    assert first.timepoint == "m3"
    invitations.redeem(session, KEY, token, now=NOW)
    with pytest.raises(UsedTokenError):
        invitations.open_link(session, KEY, token, now=NOW)
    token_b = invitations.issue(session, KEY, people["IL1-B"], "m3", now=NOW).token
    consent.record_consent(
        session, centre=centre_of(session, "IL1"), pseudonym="IL1-B",
        state="withdrawn", event_date=D(2025, 5, 1), actor="test",
    )  # fmt: skip
    with pytest.raises(invitations.NoLongerAvailableError):
        invitations.open_link(session, KEY, token_b, now=NOW)


def centre_of(session: Session, code: str):  # type: ignore[no-untyped-def]
    from cohort.centres import get_centre

    return get_centre(session, code)
