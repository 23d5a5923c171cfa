"""Who is signing in: the web app's one call into password and OpenID Connect sign-in.

Passwords go through the platform's one sign-in function, :func:`cohort.auth.sign_in`
(argon2, lockout after 5 failures in 10 minutes for 10 minutes, audited), the same the
CLI uses. The pages see only :class:`Identity` or ``None``, so they never learn which
part was wrong.

OpenID Connect (``st.login``) identifies a person by the provider's claims; the
account is the one whose e-mail is the verified ``email`` claim, resolved by the
platform's :func:`cohort.auth.sign_in_oidc` (unknown or unverified e-mail and
disabled accounts refused and audited; docs/webapp.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cohort._time import utcnow
from cohort.auth import sign_in, sign_in_oidc
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

    Calls :func:`cohort.auth.sign_in_oidc` (refusals audited). Every refusal
    (missing, malformed, unverified or unknown e-mail, disabled account) is None.
    """
    try:
        user = sign_in_oidc(session, claims, now=utcnow())
    except AuthenticationError:
        return None
    return identity_of(session, user)
