"""PROM invitations: signed, single-use, expiring links; completion rates.

A token is ``base64url(invitation_id | expiry | nonce) . base64url(HMAC-SHA-256)``
under the platform's signing key; the database keeps only its SHA-256. Redeeming is
one conditional UPDATE (``used_at IS NULL``) whose row count decides, so a link is
used once whatever happens concurrently. Sending a reminder re-signs the link (new
nonce, new hash), so no usable token ever rests in the database.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.orm import Session

from cohort._time import as_utc, utcnow
from cohort.consent_gate import REFUSED_STATES, refusal
from cohort.errors import (
    ExpiredTokenError,
    ForgedTokenError,
    InvalidInputError,
    NoLongerAvailableError,
    UsedTokenError,
)
from cohort.invitation_completion import CompletionRow, completion
from omop.cdm import Death, Person
from omop.cohort_tables import Enrolment, Invitation
from omop.private_files import random_key_file

__all__ = [
    "NO_LONGER_AVAILABLE",
    "SIGNING_KEY_FILE",
    "CompletionRow",
    "IssuedInvitation",
    "OpenInvitation",
    "RedeemedInvitation",
    "completion",
    "issue",
    "load_signing_key",
    "open_link",
    "redeem",
    "resign",
    "token_hash",
    "without_deaths",
]

#: What the patient's page shows when the patient declined or withdrew consent.
NO_LONGER_AVAILABLE = "this questionnaire is no longer available"
_PAYLOAD = struct.Struct(">QQ16s")
_KEY_BYTES = 32
#: The signing key's file name in the data directory (CLI, web app and demo share it).
SIGNING_KEY_FILE = "invitation-signing.key"


def load_signing_key(path: Path) -> bytes:
    """Return the signing key stored at ``path``, creating it (mode 0600) if absent."""
    key = random_key_file(path, _KEY_BYTES)
    if len(key) != _KEY_BYTES:
        raise InvalidInputError(f"{path}: not an invitation signing key")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_hash(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _sign(signing_key: bytes, invitation_id: int, expires_at: datetime.datetime) -> str:
    payload = _PAYLOAD.pack(
        invitation_id, int(as_utc(expires_at).timestamp()), secrets.token_bytes(16)
    )
    mac = hmac.new(signing_key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def _claims(signing_key: bytes, token: str) -> tuple[int, datetime.datetime]:
    try:
        head, tail = token.strip().split(".")
        payload, mac = _unb64(head), _unb64(tail)
        invitation_id, expiry, _nonce = _PAYLOAD.unpack(payload)
    except (ValueError, binascii.Error, struct.error):
        raise ForgedTokenError("invitation link is malformed") from None
    good = hmac.new(signing_key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(good, mac):
        raise ForgedTokenError("invitation link signature does not verify")
    return int(invitation_id), datetime.datetime.fromtimestamp(expiry, datetime.UTC)


def without_deaths(session: Session, person_ids: set[int]) -> set[int]:
    """Return the persons of ``person_ids`` with no recorded death."""
    if not person_ids:
        return set()
    dead = session.scalars(
        select(Death.person_id).where(Death.person_id.in_(sorted(person_ids)))
    )
    return person_ids - {int(p) for p in dead}


@dataclass(frozen=True)
class IssuedInvitation:
    """A new invitation and its link token (shown once, never stored)."""

    invitation_id: int
    token: str
    expires_at: datetime.datetime


def issue(
    session: Session,
    signing_key: bytes,
    person_id: int,
    timepoint: str,
    *,
    valid_for: datetime.timedelta = datetime.timedelta(days=28),
    now: datetime.datetime | None = None,
) -> IssuedInvitation:
    """Create an invitation for one person and timepoint; return its token.

    Raises
    ------
    InvalidInputError
        A death is recorded for the person: no questionnaire is sent.
    """
    if session.get(Death, person_id) is not None:
        raise InvalidInputError(
            f"person {person_id}: a death is recorded; no questionnaire link is issued"
        )
    created = as_utc(now or utcnow())
    expires = (created + valid_for).replace(microsecond=0)
    row = Invitation(
        person_id=person_id,
        timepoint_code=timepoint,
        token_hash="pending-" + secrets.token_hex(24),
        created_at=created,
        expires_at=expires,
    )
    session.add(row)
    session.flush()
    token = _sign(signing_key, row.invitation_id, expires)
    row.token_hash = token_hash(token)
    session.flush()
    return IssuedInvitation(row.invitation_id, token, expires)


def resign(session: Session, signing_key: bytes, invitation_id: int) -> str:
    """Give an invitation a fresh token (the old link stops working); return it."""
    row = session.get(Invitation, invitation_id)
    if row is None:
        raise ForgedTokenError(f"no invitation {invitation_id}")
    token = _sign(signing_key, invitation_id, row.expires_at)
    row.token_hash = token_hash(token)
    session.flush()
    return token


@dataclass(frozen=True)
class RedeemedInvitation:
    """What a redeemed link opens: one person's form at one timepoint."""

    invitation_id: int
    person_id: int
    timepoint: str


def _refuse_if_closed(session: Session, invitation_id: int) -> None:
    """Raise :class:`NoLongerAvailableError` when the patient is out of reach.

    That is: declined or withdrew consent, or has a recorded death (a relative
    opening the link sees the same neutral message).
    """
    person_id = session.scalar(
        select(Invitation.person_id).where(Invitation.invitation_id == invitation_id)
    )
    if person_id is None:
        return
    if refusal(session, person_id=int(person_id)):
        raise NoLongerAvailableError(NO_LONGER_AVAILABLE)
    if session.get(Death, int(person_id)) is not None:
        raise NoLongerAvailableError(NO_LONGER_AVAILABLE)


def redeem(
    session: Session,
    signing_key: bytes,
    token: str,
    *,
    now: datetime.datetime | None = None,
) -> RedeemedInvitation:
    """Use a link once: one atomic conditional UPDATE decides.

    The patient's current consent is part of the same UPDATE (the caller's
    transaction): a link issued before the patient declined or withdrew opens
    nothing. The write comes first, so SQLite takes its write lock at once.

    Raises
    ------
    NoLongerAvailableError
        The patient declined or withdrew consent ("this questionnaire is no longer
        available"); the link is not used.
    ForgedTokenError
        Bad signature, or no invitation holds this token (superseded by a reminder).
    ExpiredTokenError
        The link has expired.
    UsedTokenError
        The link was used already (also by a concurrent request).
    """
    invitation_id, expiry = _claims(signing_key, token)
    moment = as_utc(now or utcnow())
    if moment >= expiry:
        _refuse_if_closed(session, invitation_id)
        raise ExpiredTokenError("invitation link has expired")
    digest = token_hash(token)
    result = session.execute(
        update(Invitation)
        .where(
            Invitation.invitation_id == invitation_id,
            Invitation.token_hash == digest,
            Invitation.used_at.is_(None),
            Invitation.expires_at > moment,
            Invitation.person_id.not_in(
                select(Enrolment.person_id).where(
                    Enrolment.state.in_(sorted(s.value for s in REFUSED_STATES))
                )
            ),
            Invitation.person_id.not_in(select(Death.person_id)),
        )
        .values(used_at=moment)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) == 1:
        row = session.execute(
            select(Invitation.person_id, Invitation.timepoint_code).where(
                Invitation.invitation_id == invitation_id
            )
        ).one()
        return RedeemedInvitation(invitation_id, int(row[0]), str(row[1]))
    _refuse_if_closed(session, invitation_id)
    found = session.execute(
        select(Invitation.token_hash, Invitation.used_at, Invitation.expires_at).where(
            Invitation.invitation_id == invitation_id
        )
    ).one_or_none()
    if found is None or found[0] != digest:
        raise ForgedTokenError("no invitation matches this link")
    if found[1] is not None:
        raise UsedTokenError("invitation link was used already")
    raise ExpiredTokenError("invitation link has expired")


@dataclass(frozen=True)
class OpenInvitation:
    """A link that would be accepted now (checked, not used)."""

    invitation_id: int
    person_id: int
    care_site_id: int
    timepoint: str
    expires_at: datetime.datetime


def open_link(
    session: Session,
    signing_key: bytes,
    token: str,
    *,
    now: datetime.datetime | None = None,
) -> OpenInvitation:
    """Check a link without using it (the form page opens it; :func:`redeem` uses it).

    Raises
    ------
    NoLongerAvailableError
        The patient declined or withdrew consent ("this questionnaire is no longer
        available"), checked first: such a link says so whatever its state.
    ForgedTokenError, ExpiredTokenError, UsedTokenError
        As :func:`redeem` would.
    """
    invitation_id, expiry = _claims(signing_key, token)
    moment = as_utc(now or utcnow())
    _refuse_if_closed(session, invitation_id)
    if moment >= expiry:
        raise ExpiredTokenError("invitation link has expired")
    found = session.execute(
        select(
            Invitation.token_hash,
            Invitation.used_at,
            Invitation.expires_at,
            Invitation.person_id,
            Invitation.timepoint_code,
            Person.care_site_id,
        )
        .join(Person, Person.person_id == Invitation.person_id)
        .where(Invitation.invitation_id == invitation_id)
    ).one_or_none()
    if found is None or found[0] != token_hash(token):
        raise ForgedTokenError("no invitation matches this link")
    if found[1] is not None:
        raise UsedTokenError("invitation link was used already")
    if as_utc(found[2]) <= moment:
        raise ExpiredTokenError("invitation link has expired")
    return OpenInvitation(
        invitation_id,
        int(found[3]),
        int(found[5] or 0),
        str(found[4]),
        as_utc(found[2]),
    )
