from __future__ import annotations

import datetime
import email
import email.policy
import socket

from cohort_helpers import centre, enrol
from smtp_stub import SmtpStub
from sqlalchemy.orm import Session

from cohort import invitations, outbox
from cohort.outbox import SmtpSender

KEY = bytes(range(32))
NOW = datetime.datetime(2025, 5, 1, 9, tzinfo=datetime.UTC)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _queue(session: Session) -> tuple[int, int]:
    pid = enrol(session, centre(session, "O1"), "O1-P")
    inv = invitations.issue(session, KEY, pid, "m6", now=NOW)
    outbox.enqueue(
        session,
        pid,
        "invitation",
        "Questionnaire",
        f"Open {outbox.LINK_PLACEHOLDER}",
        invitation_id=inv.invitation_id,
        now=NOW,
    )
    return pid, inv.invitation_id


def test_server_down_keeps_message_then_delivers(session: Session) -> None:
    pid, _ = _queue(session)
    addresses = {pid: "patient@example.org"}
    down = SmtpSender("127.0.0.1", _closed_port(), timeout_s=2)
    for attempt in (1, 2):
        report = outbox.deliver(
            session, down, addresses.get, signing_key=KEY, link_base="https://x/p?t="
        )
        assert (report.sent, report.failed) == (0, 1)
        (message,) = outbox.pending(session)
        assert message.attempts == attempt
        assert message.last_error
    with SmtpStub() as stub:
        up = SmtpSender("127.0.0.1", stub.port, from_address="cohort@example.org")
        report = outbox.deliver(
            session, up, addresses.get, signing_key=KEY, link_base="https://x/p?t="
        )
    assert report.sent == 1
    assert outbox.pending(session) == []
    ((sender, rcpts, body),) = stub.mailbox.messages
    assert rcpts == ["<patient@example.org>"]
    assert sender == "<cohort@example.org>"
    parsed = email.message_from_string(body, policy=email.policy.default)
    text = parsed.get_content()  # type: ignore[attr-defined]
    link = next(line for line in text.splitlines() if "https://x/p?t=" in line)
    token = link.split("t=", 1)[1].strip()
    assert invitations.redeem(session, KEY, token, now=NOW).person_id == pid


def test_message_without_address_stays(session: Session) -> None:
    _queue(session)
    report = outbox.deliver(
        session,
        SmtpSender("127.0.0.1", _closed_port()),
        lambda _pid: None,
        signing_key=KEY,
        link_base="x",
    )
    assert report.no_address == 1
    assert len(outbox.pending(session)) == 1


def test_reminder_after_a_week(session: Session) -> None:
    pid, inv_id = _queue(session)

    class Capture:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, to_address: str, subject: str, body: str) -> None:
            self.sent.append(body)

    cap = Capture()
    outbox.deliver(
        session, cap, lambda _p: "a@b", signing_key=KEY, link_base="L", now=NOW
    )
    assert outbox.queue_reminders(session, now=NOW + datetime.timedelta(days=6)) == 0
    assert outbox.queue_reminders(session, now=NOW + datetime.timedelta(days=8)) == 1
    outbox.deliver(
        session, cap, lambda _p: "a@b", signing_key=KEY, link_base="L", now=NOW
    )
    assert len(cap.sent) == 2
    first, second = (b.split("L", 1)[1].split()[0] for b in cap.sent)
    assert first != second
    assert invitations.redeem(session, KEY, second, now=NOW).invitation_id == inv_id
    del pid


def test_no_message_reaches_a_patient_who_withdrew_or_died(session: Session) -> None:
    """Queued before the withdrawal or death: removed unsent; no reminder either."""
    from cohort_helpers import user

    from cohort import consent, service
    from cohort.centres import get_centre

    site = centre(session, "O2")
    people = {p: enrol(session, site, p) for p in ("O2-W", "O2-D", "O2-A")}
    for pid in people.values():
        inv = invitations.issue(session, KEY, pid, "m6", now=NOW)
        outbox.enqueue(session, pid, "invitation", "Questionnaire",
                       f"Open {outbox.LINK_PLACEHOLDER}",
                       invitation_id=inv.invitation_id, now=NOW)  # fmt: skip
    consent.record_consent(
        session, centre=get_centre(session, "O2"), pseudonym="O2-W",
        state="withdrawn", event_date=NOW.date(), actor="test",
    )  # fmt: skip
    admin = user(session, "o2-dm", "data_manager", ["O2"])
    service.record_followup(
        session, admin, centre_code="O2", pseudonym="O2-D", death=NOW.date()
    )

    class Capture:
        def __init__(self) -> None:
            self.to: list[str] = []

        def send(self, to_address: str, subject: str, body: str) -> None:
            self.to.append(to_address)

    cap = Capture()
    address = {pid: f"{p}@example.org" for p, pid in people.items()}
    report = outbox.deliver(
        session, cap, address.get, signing_key=KEY, link_base="L", now=NOW
    )
    assert (report.sent, report.cancelled) == (1, 2)
    assert cap.to == ["O2-A@example.org"]
    assert outbox.pending(session) == []
    later = NOW + datetime.timedelta(days=8)
    assert outbox.queue_reminders(session, now=later) == 1  # only O2-A
    (reminder,) = outbox.pending(session)
    assert reminder.person_id == people["O2-A"]
