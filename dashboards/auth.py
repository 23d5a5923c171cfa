"""Who is signing in: the web app's one call into password and OpenID Connect sign-in.

Passwords go through the platform's one sign-in function, :func:`cohort.auth.sign_in`
(argon2, lockout after 5 failures in 10 minutes for 10 minutes, audited), the same the
CLI uses. The pages see only :class:`Identity` or ``None``, so they never learn which
part was wrong.

OpenID Connect (``st.login``) identifies a person by the provider's claims; an account
is matched by e-mail. The account table (``app_user``) has no e-mail column yet, so
:func:`match_oidc_account` matches nobody until it has one (docs/webapp.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cohort._time import utcnow
from cohort.auth import sign_in
from cohort.centres import centre_codes
from cohort.errors import AuthenticationError
from cohort.users import user_centre_ids
from omop.cohort_tables import AppUser

__all__ = ["Identity", "check_password", "identity_of", "match_oidc_account"]


@dataclass(frozen=True)
class Identity:
    """A signed-in user as the pages see them (no secret)."""

    username: str
    role: str
    centres: tuple[str, ...]


def identity_of(session: Session, user: AppUser) -> Identity:
    """Return the :class:`Identity` of an account: name, role and centre codes."""
    codes = centre_codes(session)
    centres = tuple(sorted(codes[c] for c in user_centre_ids(session, user)))
    return Identity(user.username, user.role, centres)


def check_password(session: Session, username: str, password: str) -> Identity | None:
    """Return the identity when ``username`` and ``password`` match, else None.

    Calls the platform's one sign-in function, :func:`cohort.auth.sign_in` (argon2,
    lockout after 5 failures in 10 minutes, refusals audited). Every refusal
    (unknown or malformed name, wrong password, locked) is None, so the page cannot
    say which part was wrong.
    """
    if not username or not password:
        return None
    try:
        user = sign_in(session, username, password=password, now=utcnow())
    except AuthenticationError:
        return None
    return identity_of(session, user)


def match_oidc_account(
    session: Session, claims: Mapping[str, object]
) -> Identity | None:
    """Return the account whose e-mail is the provider's verified ``email`` claim.

    Returns None while ``app_user`` has no ``email`` column (the documented
    limitation), when the claim is missing or not verified, or when no account has
    that address.
    """
    from sqlalchemy import func, select

    column = getattr(AppUser, "email", None)
    email = str(claims.get("email") or "").strip().lower()
    if column is None or not email or claims.get("email_verified") is False:
        return None
    user = session.scalar(select(AppUser).where(func.lower(column) == email))
    return identity_of(session, user) if user is not None else None
