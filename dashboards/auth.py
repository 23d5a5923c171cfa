"""Who is signing in: the web app's one call into password and OpenID Connect sign-in.

ADAPTER, TO BE SWITCHED. The privacy work is building ONE sign-in function with argon2
and lockout (5 failures in 10 minutes lock the account for 10 minutes), expected as
``cohort.auth.sign_in``. Until it lands, :func:`check_password` below uses
``cohort.users.get_user`` and ``cohort.users.verify_password`` (argon2, no lockout).
Switching is a change of its body only: call ``cohort.auth.sign_in`` and map its
refusal (wrong password, unknown user, locked) to ``None``. The pages see only
:class:`Identity` or ``None``, so they never learn which part was wrong.

OpenID Connect (``st.login``) identifies a person by the provider's claims; an account
is matched by e-mail. The account table (``app_user``) has no e-mail column yet, so
:func:`match_oidc_account` matches nobody until it has one (docs/webapp.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cohort.centres import centre_codes
from cohort.errors import UnknownUserError
from cohort.users import get_user, user_centre_ids, verify_password
from omop.cohort_tables import AppUser

__all__ = ["Identity", "check_password", "identity_of", "match_oidc_account"]

# Verified against when the user name is unknown, so both refusals cost the same.
_DUMMY = AppUser(
    username="",
    role="viewer",
    password_hash=(
        "$argon2id$v=19$m=65536,t=3,p=4$M17fJCNLCepJiQ3jxvDgfQ$"
        "D0ftWxVLz8qmWOyomyn5Lq7JaWsPGPn65RjcHbXdEAI"
    ),
)


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

    Adapter (see the module docstring): switch to ``cohort.auth.sign_in``.
    """
    if not username.strip() or not password:
        return None
    try:
        user = get_user(session, username)
    except UnknownUserError:
        verify_password(_DUMMY, password)
        return None
    if not verify_password(user, password):
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
