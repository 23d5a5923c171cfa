"""Platform accounts: roles, centres, argon2 password hashes, the first admin."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort._time import utcnow
from cohort.centres import get_centre
from cohort.errors import (
    AuthenticationError,
    DuplicateError,
    InvalidInputError,
    UnknownUserError,
)
from omop.cdm import CareSite
from omop.cohort_tables import AppUser, UserCentre

__all__ = [
    "ADMIN_USERNAME",
    "EMAIL_PATTERN",
    "USERNAME_PATTERN",
    "Role",
    "UserRow",
    "add_user",
    "check_email",
    "check_username",
    "disable_user",
    "ensure_admin",
    "get_user",
    "list_users",
    "resolve_user",
    "set_password",
    "user_centre_ids",
    "verify_password",
]

ADMIN_USERNAME = "admin"
_HASHER = PasswordHasher()
_MIN_PASSWORD = 8
#: A user name: lower-case letters, digits, ``.``, ``_``, ``-``; 1 to 64 characters.
USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
#: An e-mail address (lower case): an RFC 5322 dot-atom local part, ``@``, and a
#: domain of at least two DNS labels. Quoted local parts and address literals are
#: refused (no identity provider issues them for staff accounts).
EMAIL_PATTERN = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
_MAX_EMAIL = 254
_MAX_LOCAL = 64


def check_username(username: str) -> str:
    """Return ``username`` if well formed; never fold case or strip spaces.

    Raises
    ------
    InvalidInputError
        When the name does not match ``^[a-z0-9][a-z0-9._-]{0,63}$`` (empty,
        surrounding spaces, capitals, other characters).

    Examples
    --------
    >>> check_username("jo.smith")
    'jo.smith'
    """
    if not isinstance(username, str) or not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInputError(
            f"malformed user name {username!r}: use 1-64 characters a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    return username


def check_email(email: str) -> str:
    """Return the e-mail address lower-cased, if it is a plausible address.

    Raises
    ------
    InvalidInputError
        For surrounding spaces, more than 254 characters (64 before ``@``), or a
        value that is not ``local@domain.tld`` (:data:`EMAIL_PATTERN`).

    Examples
    --------
    >>> check_email("Jo.Smith@Example.ORG")
    'jo.smith@example.org'
    """
    if not isinstance(email, str) or email != email.strip():
        raise InvalidInputError(f"malformed e-mail address {email!r}: spaces around it")
    folded = email.lower()
    local = folded.partition("@")[0]
    if (
        len(folded) > _MAX_EMAIL
        or len(local) > _MAX_LOCAL
        or not EMAIL_PATTERN.fullmatch(folded)
    ):
        raise InvalidInputError(
            f"malformed e-mail address {email!r}: use local-part@domain.tld"
        )
    return folded


class Role(StrEnum):
    """What a user is: the permission layer turns it into filters."""

    ADMIN = "admin"
    DATA_MANAGER = "data_manager"
    CLINICIAN = "clinician"
    RESEARCHER = "researcher"
    VIEWER = "viewer"
    PATIENT = "patient"


@dataclass(frozen=True)
class UserRow:
    """A user as listed (no password hash)."""

    username: str
    role: str
    centres: tuple[str, ...]


def _role(value: Role | str) -> Role:
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInputError(
            f"unknown role {value!r}; use one of {allowed}"
        ) from None


def add_user(
    session: Session,
    username: str,
    role: Role | str,
    centres: Iterable[str],
    password: str,
    *,
    email: str | None = None,
) -> AppUser:
    """Create an account with an argon2 password hash, its centres and e-mail.

    Raises
    ------
    DuplicateError
        When the user name or the e-mail address is taken.
    InvalidInputError
        For a malformed name (:func:`check_username`) or e-mail address
        (:func:`check_email`), an unknown role, a short password, or a
        centre-bound role without centre.
    UnknownCentreError
        For an unknown centre code.
    """
    name = check_username(username)
    the_role = _role(role)
    if len(password) < _MIN_PASSWORD:
        raise InvalidInputError(f"password must have at least {_MIN_PASSWORD} chars")
    if session.scalar(select(AppUser).where(AppUser.username == name)) is not None:
        raise DuplicateError(f"user {name!r} exists already")
    address = check_email(email) if email is not None else None
    if address is not None and session.scalar(
        select(AppUser.user_id).where(AppUser.email == address)
    ):
        raise DuplicateError(f"e-mail address {address!r} belongs to another user")
    sites = [get_centre(session, c) for c in centres]
    if not sites and the_role in (Role.DATA_MANAGER, Role.CLINICIAN, Role.VIEWER):
        raise InvalidInputError(f"role {the_role.value} needs --centre")
    user = AppUser(
        username=name,
        role=the_role.value,
        password_hash=_HASHER.hash(password),
        created_at=utcnow(),
        email=address,
    )
    session.add(user)
    session.flush()
    for site in sites:
        session.add(UserCentre(user_id=user.user_id, care_site_id=site.care_site_id))
    session.flush()
    return user


def get_user(session: Session, username: str) -> AppUser:
    """Return the account.

    Raises
    ------
    InvalidInputError
        For a malformed name (:func:`check_username`).
    UnknownUserError
        When no account has the name.
    """
    check_username(username)
    user = session.scalar(select(AppUser).where(AppUser.username == username))
    if user is None:
        raise UnknownUserError(f"unknown user {username!r} (rtcohort users add)")
    return user


def resolve_user(session: Session, user: AppUser | str) -> AppUser:
    """Return the account given as itself or by name.

    Service functions called with a name (the CLI's ``RTCOHORT_USER``, signed in
    already) refuse an unknown or malformed name before anything runs.

    Raises
    ------
    AuthenticationError
        For an unknown or malformed name (audited as a refusal).
    """
    if isinstance(user, AppUser):
        return user
    try:
        return get_user(session, user)
    except (InvalidInputError, UnknownUserError) as exc:
        from cohort.audit import record_refusal

        record_refusal(session, str(user)[:64], "sign-in", "unknown or malformed name")
        raise AuthenticationError(f"authentication required: {exc}") from None


def disable_user(session: Session, username: str, *, now: datetime) -> AppUser:
    """Disable an account: from ``now`` on it signs in by no route.

    Raises
    ------
    InvalidInputError, UnknownUserError
        As :func:`get_user`.
    """
    user = get_user(session, username)
    if user.disabled_at is None:
        user.disabled_at = now
        session.flush()
    return user


def set_password(user: AppUser, password: str) -> None:
    """Replace the user's password hash (argon2).

    Raises
    ------
    InvalidInputError
        For a password shorter than 8 characters.
    """
    if len(password) < _MIN_PASSWORD:
        raise InvalidInputError(f"password must have at least {_MIN_PASSWORD} chars")
    user.password_hash = _HASHER.hash(password)


def verify_password(user: AppUser, password: str) -> bool:
    """Return whether ``password`` is the user's password."""
    try:
        return bool(_HASHER.verify(user.password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def user_centre_ids(session: Session, user: AppUser) -> frozenset[int]:
    """Return the CARE_SITE ids the user belongs to."""
    return frozenset(
        session.scalars(
            select(UserCentre.care_site_id).where(UserCentre.user_id == user.user_id)
        )
    )


def list_users(session: Session) -> list[UserRow]:
    """Return every account with its centres, ordered by name."""
    rows = session.execute(
        select(AppUser.username, AppUser.role, CareSite.care_site_source_value)
        .outerjoin(UserCentre, UserCentre.user_id == AppUser.user_id)
        .outerjoin(CareSite, CareSite.care_site_id == UserCentre.care_site_id)
        .order_by(AppUser.username, CareSite.care_site_source_value)
    ).all()
    grouped: dict[str, tuple[str, list[str]]] = {}
    for username, role, code in rows:
        entry = grouped.setdefault(username, (role, []))
        if code is not None:
            entry[1].append(str(code))
    return [UserRow(n, r, tuple(c)) for n, (r, c) in grouped.items()]


def ensure_admin(session: Session, password: str | None) -> str | None:
    """Create the ``admin`` account once; return the generated password, if any.

    With ``password`` None a random one is generated and returned (to be printed
    once); when the account exists nothing changes and None is returned.
    """
    if session.scalar(select(AppUser).where(AppUser.username == ADMIN_USERNAME)):
        return None
    generated = password is None
    secret = password if password is not None else secrets.token_urlsafe(18)
    add_user(session, ADMIN_USERNAME, Role.ADMIN, [], secret)
    return secret if generated else None
