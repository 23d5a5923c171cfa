"""Sign-in: ONE function for the CLI and the web app; personal API tokens; lockout.

A user proves who they are with their password (argon2, :mod:`cohort.users`), a
personal API token, or, in the web app, an OpenID Connect identity whose verified
e-mail claim names their account (:func:`sign_in_oidc`). A disabled account is
refused by every route. A token is 32 random bytes (URL-safe text, shown once); the
database keeps its SHA-256, its expiry and its revocation. Five failed sign-ins of
a name within ten minutes lock the name for ten minutes. Every failure is recorded
(``sign_in_failure``) and audited as a refusal; both survive the rollback of the
caller's transaction (:func:`cohort.audit.record_refusal`).
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.orm import Session, SessionTransaction

from cohort import audit
from cohort._time import as_utc
from cohort.errors import AuthenticationError, InvalidInputError
from cohort.permissions import Action, scope_for
from cohort.users import check_email, check_username, get_user, verify_password
from omop.auth_tables import ApiToken, SignInFailure
from omop.cohort_tables import AppUser

__all__ = [
    "LOCKOUT_FAILURES",
    "LOCKOUT_MINUTES",
    "IssuedToken",
    "create_token",
    "hash_token",
    "revoke_tokens",
    "sign_in",
    "sign_in_oidc",
]

LOCKOUT_FAILURES = 5
LOCKOUT_MINUTES = 10
_TOKEN_BYTES = 32
_FAILURES = "rtcohort.auth.failures"  # session.info: failures to write after the tx


@dataclass(frozen=True)
class IssuedToken:
    """A token as issued: the text (shown once) and its expiry."""

    username: str
    token: str
    expires_at: datetime.datetime


def hash_token(token: str) -> str:
    """Return the stored form of a token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _owner_or_manager(session: Session, actor: AppUser, username: str) -> AppUser:
    """Return the token owner; only the owner or a manager may handle its tokens."""
    user = get_user(session, username)
    if actor.user_id != user.user_id:
        scope_for(session, actor, Action.MANAGE).require()
    return user


def create_token(
    session: Session,
    actor: AppUser,
    username: str,
    *,
    days: int = 90,
    now: datetime.datetime,
) -> IssuedToken:
    """Issue a personal API token for ``username`` valid ``days`` days (audited).

    Raises
    ------
    InvalidInputError
        For a malformed name or ``days`` below 1.
    UnknownUserError
        For an unknown name.
    PermissionDeniedError
        When ``actor`` is neither the user nor a manager.
    """
    if days < 1:
        raise InvalidInputError(f"--days must be at least 1, got {days}")
    user = _owner_or_manager(session, actor, username)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    expires = now + datetime.timedelta(days=days)
    session.add(
        ApiToken(
            user_id=user.user_id,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=expires,
        )
    )
    session.flush()
    audit.record(
        session, actor.username, "token.create", f"{user.username} {days} days"
    )
    return IssuedToken(user.username, token, expires)


def revoke_tokens(
    session: Session, actor: AppUser, username: str, *, now: datetime.datetime
) -> int:
    """Revoke every unrevoked token of ``username``; return how many (audited)."""
    user = _owner_or_manager(session, actor, username)
    rows = list(
        session.scalars(
            select(ApiToken).where(
                ApiToken.user_id == user.user_id, ApiToken.revoked_at.is_(None)
            )
        )
    )
    for row in rows:
        row.revoked_at = now
    session.flush()
    done = len(rows)
    audit.record(
        session, actor.username, "token.revoke", f"{user.username} {done} token(s)"
    )
    return done


def _recent_failures(session: Session, username: str, now: datetime.datetime) -> int:
    since = now - datetime.timedelta(minutes=LOCKOUT_MINUTES)
    return int(
        session.scalar(
            select(func.count())
            .select_from(SignInFailure)
            .where(SignInFailure.username == username, SignInFailure.failed_at > since)
        )
        or 0
    )


def _token_ok(
    session: Session, user: AppUser, token: str, now: datetime.datetime
) -> str | None:
    """Return None if the token is the user's and valid, else the reason."""
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token))
    )
    if row is None or row.user_id != user.user_id:
        return "wrong token"
    if row.revoked_at is not None:
        return "revoked token"
    if as_utc(row.expires_at) <= now:
        return "expired token"
    return None


# Verified against when the user name is unknown, so both refusals cost the same.
_DUMMY = AppUser(
    username="",
    role="viewer",
    password_hash=(
        "$argon2id$v=19$m=65536,t=3,p=4$M17fJCNLCepJiQ3jxvDgfQ$"
        "D0ftWxVLz8qmWOyomyn5Lq7JaWsPGPn65RjcHbXdEAI"
    ),
)


def sign_in(
    session: Session,
    username: str,
    *,
    password: str | None = None,
    token: str | None = None,
    now: datetime.datetime,
) -> AppUser:
    """Return the account of ``username`` if the password or token proves it.

    Parameters
    ----------
    session
        The caller's transaction. Failures are recorded in their own transaction
        when this one ends, so they survive its rollback.
    username
        The name as given (never folded: see :func:`cohort.users.check_username`).
    password, token
        One of them: the user's password, or a personal API token.
    now
        The time of the attempt (aware).

    Raises
    ------
    AuthenticationError
        For a malformed or unknown name, missing or wrong credentials, an expired or
        revoked token, or a name locked after 5 failures in 10 minutes.
    """
    try:
        check_username(username)
    except InvalidInputError as exc:
        raise _fail(session, username, "malformed name", now, str(exc)) from None
    if _recent_failures(session, username, now) >= LOCKOUT_FAILURES:
        raise _fail(
            session,
            username,
            "locked",
            now,
            f"user {username} is locked for {LOCKOUT_MINUTES} minutes after "
            f"{LOCKOUT_FAILURES} failed sign-ins",
            count=False,
        )
    user = session.scalar(select(AppUser).where(AppUser.username == username))
    if user is None:
        if password is not None:  # cost the same as a wrong password (no user probe)
            verify_password(_DUMMY, password)
        raise _fail(session, username, "unknown user", now)
    if user.disabled_at is not None:
        if password is not None:
            verify_password(_DUMMY, password)
        raise _fail(session, username, "disabled user", now)
    if token is not None:
        reason = _token_ok(session, user, token, now)
    elif password is not None:
        reason = None if verify_password(user, password) else "wrong password"
    else:
        reason = "no credentials"
    if reason is not None:
        raise _fail(session, username, reason, now)
    return user


def _claim_true(value: object) -> bool:
    """Return whether an ``email_verified`` claim says yes (JSON true or "true")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def sign_in_oidc(
    session: Session, claims: Mapping[str, object], *, now: datetime.datetime
) -> AppUser:
    """Return the account an OpenID Connect identity names by its verified e-mail.

    The identity provider has authenticated the person; the platform decides who
    they are here: the ``email`` claim, lower-cased, must be the ``email`` of an
    account, and the provider must vouch for it (``email_verified`` true: a missing
    claim counts as not verified). Refusals are audited like password refusals
    (``sign-in``, in a transaction of their own); they do not count towards the
    password lockout, which guards against guessing.

    Parameters
    ----------
    session
        The caller's transaction.
    claims
        The provider's ID-token claims (Streamlit: ``st.user.to_dict()``).
    now
        The time of the attempt (aware).

    Raises
    ------
    AuthenticationError
        For a missing or malformed e-mail, an unverified e-mail, an address no
        account has, or a disabled account.
    """
    raw = claims.get("email")
    shown = str(raw or "")[:58]
    try:
        email = check_email(str(raw or ""))
    except InvalidInputError:
        raise _fail(
            session, f"oidc:{shown}", "malformed e-mail", now, count=False
        ) from None
    if not _claim_true(claims.get("email_verified")):
        raise _fail(
            session, f"oidc:{email[:58]}", "unverified e-mail", now, count=False
        )
    user = session.scalar(select(AppUser).where(AppUser.email == email))
    if user is None:
        raise _fail(session, f"oidc:{email[:58]}", "unknown e-mail", now, count=False)
    if user.disabled_at is not None:
        raise _fail(session, user.username, "disabled user", now, count=False)
    return user


def _fail(
    session: Session,
    username: str,
    reason: str,
    now: datetime.datetime,
    message: str | None = None,
    *,
    count: bool = True,
) -> AuthenticationError:
    """Record a failed sign-in (after the transaction) and return the error."""
    name = username[:64]
    audit.record_refusal(session, name, "sign-in", reason)
    if count:
        failure = SignInFailure(username=name, failed_at=now, reason=reason[:50])
        bind_ = session.get_bind()
        if isinstance(bind_, Connection):  # a session joined to its caller's tx
            session.add(failure)
            session.flush()
        elif not session.in_transaction():
            _write_failure(bind_, failure)
        else:
            session.info.setdefault(_FAILURES, []).append((bind_, failure))
    text = message or f"{reason} for user {username!r}"
    return AuthenticationError(f"authentication required: {text}")


@event.listens_for(Session, "after_transaction_end")
def _write_failures(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    pending: list[tuple[Engine, SignInFailure]] = session.info.pop(_FAILURES, [])
    for engine, failure in pending:
        _write_failure(engine, failure)


def _write_failure(engine: Engine, failure: SignInFailure) -> None:
    with Session(engine) as own, own.begin():
        own.add(failure)
