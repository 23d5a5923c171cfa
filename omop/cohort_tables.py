"""Platform tables of cohort management (ARCHITECTURE.md sections 3 and 5).

Users and their centres, consent history and enrolment, follow-up protocols, the
encrypted contact register, PROM invitations and the e-mail outbox, collaboration
projects, and the hash-chained audit trail. Every table that holds a person refers to
``person.person_id`` by a foreign key, so that erasure (``cohort.erasure``) finds it.
The logic lives in the ``cohort`` package; this module only declares storage.
"""

from __future__ import annotations

import datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from omop.base import Base

__all__ = [
    "AppUser",
    "AuditPerson",
    "AuditRecord",
    "ConsentEvent",
    "Contact",
    "Enrolment",
    "FollowupProtocol",
    "FollowupTimepoint",
    "Invitation",
    "OutboxMessage",
    "Project",
    "ProjectMember",
    "ProjectPatient",
    "UserCentre",
]

_TZ = DateTime(timezone=True)


class AppUser(Base):
    """A platform account (``role`` is one of ``cohort.users.Role``)."""

    __tablename__ = "app_user"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    #: Lower-cased e-mail address: how an OpenID Connect sign-in finds the account.
    email: Mapped[str | None] = mapped_column(String(254), nullable=True, unique=True)
    #: Set when the account is disabled: it can no longer sign in.
    disabled_at: Mapped[datetime.datetime | None] = mapped_column(_TZ, nullable=True)


class UserCentre(Base):
    """A user's membership of a centre (CARE_SITE)."""

    __tablename__ = "user_centre"

    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("app_user.user_id"), primary_key=True, autoincrement=False
    )
    care_site_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("care_site.care_site_id"),
        primary_key=True,
        autoincrement=False,
    )


class ConsentEvent(Base):
    """One recorded consent state of a person (the history; never updated)."""

    __tablename__ = "consent_event"

    consent_event_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), nullable=False, index=True
    )
    care_site_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("care_site.care_site_id"), nullable=False
    )
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    state_concept_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("concept.concept_id"), nullable=False
    )
    consent_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    event_date: Mapped[datetime.date] = mapped_column(Date, nullable=False)
    scope_data: Mapped[bool] = mapped_column(Boolean, nullable=False)
    scope_proms: Mapped[bool] = mapped_column(Boolean, nullable=False)
    scope_linkage: Mapped[bool] = mapped_column(Boolean, nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(64), nullable=False)
    recorded_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)


class Enrolment(Base):
    """A person's current place in the cohort (latest consent state, site, contact)."""

    __tablename__ = "enrolment"
    __table_args__ = (Index("ix_enrolment_care_site_state", "care_site_id", "state"),)

    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), primary_key=True, autoincrement=False
    )
    care_site_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("care_site.care_site_id"), nullable=False
    )
    treatment_site: Mapped[str] = mapped_column(String(20), nullable=False)
    protocol_code: Mapped[str] = mapped_column(String(20), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    consent_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    scope_data: Mapped[bool] = mapped_column(Boolean, nullable=False)
    scope_proms: Mapped[bool] = mapped_column(Boolean, nullable=False)
    scope_linkage: Mapped[bool] = mapped_column(Boolean, nullable=False)
    first_record_date: Mapped[datetime.date] = mapped_column(Date, nullable=False)
    consented_date: Mapped[datetime.date | None] = mapped_column(Date, nullable=True)
    last_contact_date: Mapped[datetime.date | None] = mapped_column(Date, nullable=True)


class FollowupProtocol(Base):
    """A named set of follow-up timepoints."""

    __tablename__ = "followup_protocol"

    protocol_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    code: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)


class FollowupTimepoint(Base):
    """A timepoint: ``offset_days`` after the RT start or end, with a window."""

    __tablename__ = "followup_timepoint"
    __table_args__ = (UniqueConstraint("protocol_id", "code"),)

    timepoint_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    protocol_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("followup_protocol.protocol_id"), nullable=False
    )
    code: Mapped[str] = mapped_column(String(20), nullable=False)
    anchor: Mapped[str] = mapped_column(String(10), nullable=False)
    offset_days: Mapped[int] = mapped_column(Integer, nullable=False)
    window_before_days: Mapped[int] = mapped_column(Integer, nullable=False)
    window_after_days: Mapped[int] = mapped_column(Integer, nullable=False)
    toxicity: Mapped[bool] = mapped_column(Boolean, nullable=False)
    prom: Mapped[bool] = mapped_column(Boolean, nullable=False)


class Contact(Base):
    """Centre-side contact details, AES-GCM encrypted under a centre-key sub-key."""

    __tablename__ = "contact"

    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), primary_key=True, autoincrement=False
    )
    care_site_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("care_site.care_site_id"), nullable=False
    )
    key_fingerprint: Mapped[str] = mapped_column(String(16), nullable=False)
    nonce: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    updated_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)


class Invitation(Base):
    """A single-use PROM link; only the SHA-256 of the token is stored."""

    __tablename__ = "invitation"

    invitation_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), nullable=False, index=True
    )
    timepoint_code: Mapped[str] = mapped_column(String(20), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    expires_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    used_at: Mapped[datetime.datetime | None] = mapped_column(_TZ, nullable=True)


class OutboxMessage(Base):
    """A message waiting to be sent; the address is resolved at send time."""

    __tablename__ = "outbox_message"

    message_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), nullable=False, index=True
    )
    invitation_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("invitation.invitation_id"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    last_attempt_at: Mapped[datetime.datetime | None] = mapped_column(
        _TZ, nullable=True
    )
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    sent_at: Mapped[datetime.datetime | None] = mapped_column(_TZ, nullable=True)


class Project(Base):
    """A collaboration project; it grants nothing after ``expires_on``."""

    __tablename__ = "project"

    project_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    code: Mapped[str] = mapped_column(String(50), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    protocol: Mapped[str] = mapped_column(String(255), nullable=False)
    data_controller: Mapped[str] = mapped_column(String(255), nullable=False)
    expires_on: Mapped[datetime.date] = mapped_column(Date, nullable=False)
    created_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    #: The protocol grants analysis by centre: exports keep the centre column.
    centre_level: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=false(), default=False
    )


class ProjectMember(Base):
    """A user's role in a project."""

    __tablename__ = "project_member"

    project_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("project.project_id"),
        primary_key=True,
        autoincrement=False,
    )
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("app_user.user_id"), primary_key=True, autoincrement=False
    )
    role: Mapped[str] = mapped_column(String(20), nullable=False)


class ProjectPatient(Base):
    """A person attached to a project, by hand or by a rule."""

    __tablename__ = "project_patient"

    project_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("project.project_id"),
        primary_key=True,
        autoincrement=False,
    )
    person_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("person.person_id"),
        primary_key=True,
        autoincrement=False,
        index=True,
    )
    attached_by: Mapped[str] = mapped_column(String(64), nullable=False)
    attached_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    rule: Mapped[str | None] = mapped_column(String(255), nullable=True)


class AuditRecord(Base):
    """One MAC-chained audit record; holds no person identifier.

    ``seq`` is the position in the chain (1, 2, ...); ``prev_hash`` and
    ``record_hash`` hold hex HMAC-SHA-256 values (``cohort.audit``).
    """

    __tablename__ = "audit_record"

    record_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False, unique=True)
    recorded_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(50), nullable=False)
    detail: Mapped[str] = mapped_column(String(500), nullable=False)
    person_count: Mapped[int] = mapped_column(Integer, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    record_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditPerson(Base):
    """Which persons an audit record concerns (outside the chain; erasable)."""

    __tablename__ = "audit_person"

    record_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("audit_record.record_id"),
        primary_key=True,
        autoincrement=False,
    )
    person_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("person.person_id"),
        primary_key=True,
        autoincrement=False,
        index=True,
    )
