"""The e-mail outbox: messages wait in the database until a sender delivers them.

A message holds no address and no usable link: at delivery the address is resolved
from the contact register and an invitation's link is re-signed
(:func:`cohort.invitations.resign`). A failed delivery counts an attempt and keeps the
message; nothing is lost when the server is down.
"""

from __future__ import annotations

import datetime
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort._time import as_utc, utcnow
from cohort.consent_gate import REFUSED_STATES
from cohort.invitations import resign
from omop.cdm import Death
from omop.cohort_tables import Enrolment, Invitation, OutboxMessage

__all__ = [
    "LINK_PLACEHOLDER",
    "DeliveryReport",
    "Sender",
    "SmtpSender",
    "deliver",
    "enqueue",
    "pending",
    "queue_reminders",
]

LINK_PLACEHOLDER = "{link}"


class Sender(Protocol):
    """Anything that can send one message (raises ``OSError`` on failure)."""

    def send(self, to_address: str, subject: str, body: str) -> None:
        """Send one message."""


@dataclass(frozen=True)
class SmtpSender:
    """Send through an SMTP server (plain SMTP, optional STARTTLS and login)."""

    host: str
    port: int = 25
    from_address: str = "rtcohort@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0

    def send(self, to_address: str, subject: str, body: str) -> None:
        """Send one message; raise ``OSError``/``smtplib.SMTPException``."""
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = to_address
        message["Subject"] = subject
        message.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


def enqueue(
    session: Session,
    person_id: int,
    kind: str,
    subject: str,
    body: str,
    *,
    invitation_id: int | None = None,
    now: datetime.datetime | None = None,
) -> OutboxMessage:
    """Put a message in the outbox; ``{link}`` in the body becomes the link."""
    row = OutboxMessage(
        person_id=person_id,
        invitation_id=invitation_id,
        kind=kind,
        subject=subject,
        body=body,
        created_at=as_utc(now or utcnow()),
        attempts=0,
    )
    session.add(row)
    session.flush()
    return row


def pending(session: Session) -> list[OutboxMessage]:
    """Return the unsent messages, oldest first."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None))
            .order_by(OutboxMessage.message_id)
        )
    )


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    sent: int = 0
    failed: int = 0
    no_address: int = 0
    #: Messages removed unsent: the person declined, withdrew or died since queueing.
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


def _closed_persons(session: Session, person_ids: set[int]) -> set[int]:
    """Return who of ``person_ids`` declined, withdrew or has a recorded death."""
    if not person_ids:
        return set()
    ids = sorted(person_ids)
    refused = session.scalars(
        select(Enrolment.person_id).where(
            Enrolment.person_id.in_(ids),
            Enrolment.state.in_(sorted(s.value for s in REFUSED_STATES)),
        )
    )
    dead = session.scalars(select(Death.person_id).where(Death.person_id.in_(ids)))
    return {int(p) for p in refused} | {int(p) for p in dead}


def deliver(
    session: Session,
    sender: Sender,
    resolve_address: Callable[[int], str | None],
    *,
    signing_key: bytes,
    link_base: str,
    now: datetime.datetime | None = None,
) -> DeliveryReport:
    """Try to send every unsent message; failures stay queued with an attempt count.

    A message to a person who declined, withdrew or died since it was queued is
    removed unsent (counted in ``cancelled``).

    Parameters
    ----------
    resolve_address
        ``person_id -> e-mail address`` (the contact register), None when unknown.
    signing_key, link_base
        For invitations: the link is ``link_base + token`` of a fresh token.
    """
    report = DeliveryReport()
    moment = as_utc(now or utcnow())
    waiting = pending(session)
    closed = _closed_persons(session, {m.person_id for m in waiting})
    for message in waiting:
        if message.person_id in closed:
            session.delete(message)  # never e-mail a person who left or died
            report.cancelled += 1
            continue
        message.attempts += 1
        message.last_attempt_at = moment
        address = resolve_address(message.person_id)
        if not address:
            message.last_error = "no e-mail address in the contact register"
            report.no_address += 1
            continue
        body = message.body
        if message.invitation_id is not None and LINK_PLACEHOLDER in body:
            token = resign(session, signing_key, message.invitation_id)
            body = body.replace(LINK_PLACEHOLDER, link_base + token)
        try:
            sender.send(address, message.subject, body)
        except (OSError, smtplib.SMTPException) as exc:
            message.last_error = f"{type(exc).__name__}: {exc}"[:500]
            report.failed += 1
            report.errors.append(message.last_error)
            continue
        message.sent_at = moment
        message.last_error = None
        report.sent += 1
    session.flush()
    return report


def queue_reminders(
    session: Session,
    *,
    after: datetime.timedelta = datetime.timedelta(days=7),
    now: datetime.datetime | None = None,
) -> int:
    """Queue one reminder per open invitation unanswered ``after`` its last message.

    Persons who declined, withdrew or have a recorded death get none.
    """
    moment = as_utc(now or utcnow())
    count = 0
    open_invitations = session.scalars(
        select(Invitation).where(
            Invitation.used_at.is_(None), Invitation.expires_at > moment
        )
    ).all()
    closed = _closed_persons(session, {i.person_id for i in open_invitations})
    for invitation in open_invitations:
        if invitation.person_id in closed:
            continue
        messages = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.invitation_id == invitation.invitation_id
            )
        ).all()
        if any(m.sent_at is None for m in messages):
            continue
        latest = max(
            (as_utc(m.sent_at) for m in messages if m.sent_at is not None),
            default=as_utc(invitation.created_at),
        )
        if moment - latest < after:
            continue
        enqueue(
            session,
            invitation.person_id,
            "reminder",
            "Reminder: your follow-up questionnaire",
            "Your radiotherapy follow-up questionnaire is still open: "
            f"{LINK_PLACEHOLDER}\n",
            invitation_id=invitation.invitation_id,
            now=moment,
        )
        count += 1
    return count
