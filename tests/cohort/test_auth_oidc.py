"""OpenID Connect sign-in: an identity provider's verified e-mail names the account.

``cohort.auth.sign_in_oidc`` on both backends: the account is found by its stored
(lower-cased) e-mail; unknown, unverified and malformed e-mail and disabled accounts
are refused and audited like password refusals. ``users add --email`` sets it.
"""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort.auth import sign_in, sign_in_oidc
from cohort.centres import add_centre
from cohort.errors import AuthenticationError, DuplicateError, InvalidInputError
from cohort.users import add_user, disable_user
from omop.auth_tables import SignInFailure
from omop.cohort_tables import AppUser, AuditRecord

NOW = datetime.datetime(2026, 3, 1, 9, 0, tzinfo=datetime.UTC)
PASSWORD = "long enough password"


@pytest.fixture
def jo(session: Session) -> AppUser:
    add_centre(session, "OI01")
    return add_user(session, "jo", "clinician", ["OI01"], PASSWORD,
                    email="Jo.Smith@Example.ORG")  # fmt: skip


def _refusals(session: Session) -> list[tuple[str, str]]:
    session.flush()
    rows = session.execute(
        select(AuditRecord.actor, AuditRecord.detail)
        .where(AuditRecord.action == "sign-in")
        .order_by(AuditRecord.record_id)
    ).all()
    return [(str(a), str(d)) for a, d in rows]


def test_email_is_stored_lower_cased_and_unique(session: Session, jo: AppUser) -> None:
    assert jo.email == "jo.smith@example.org"
    with pytest.raises(DuplicateError, match="belongs to another user"):
        add_user(session, "jo2", "researcher", [], PASSWORD,
                 email="JO.SMITH@example.org")  # fmt: skip
    for bad in ("jo@", "jo smith@example.org", " jo@example.org", "jo@example",
                "a..b@example.org", "x" * 65 + "@example.org"):  # fmt: skip
        with pytest.raises(InvalidInputError, match="malformed e-mail"):
            add_user(session, "jo3", "researcher", [], PASSWORD, email=bad)
    assert session.scalar(select(AppUser).where(AppUser.username == "jo3")) is None


def test_verified_email_signs_in_whatever_its_case(
    session: Session, jo: AppUser
) -> None:
    claims = {"email": "JO.smith@example.org", "email_verified": True, "sub": "x"}
    assert sign_in_oidc(session, claims, now=NOW).user_id == jo.user_id
    # some providers send the claim as a string
    claims["email_verified"] = "true"
    assert sign_in_oidc(session, claims, now=NOW).username == "jo"
    assert _refusals(session) == []


@pytest.mark.parametrize(
    ("claims", "actor", "reason"),
    [
        ({"email": "jo.smith@example.org", "email_verified": False},
         "oidc:jo.smith@example.org", "unverified e-mail"),
        ({"email": "jo.smith@example.org"},
         "oidc:jo.smith@example.org", "unverified e-mail"),
        ({"email": "someone@example.org", "email_verified": True},
         "oidc:someone@example.org", "unknown e-mail"),
        ({"email_verified": True}, "oidc:", "malformed e-mail"),
        ({"email": "not an address", "email_verified": True},
         "oidc:not an address", "malformed e-mail"),
    ],
)  # fmt: skip
def test_refusals_are_audited(
    session: Session,
    jo: AppUser,
    claims: dict[str, object],
    actor: str,
    reason: str,
) -> None:
    with pytest.raises(AuthenticationError, match="authentication required"):
        sign_in_oidc(session, claims, now=NOW)
    assert _refusals(session) == [(actor, f"refused: {reason}")]
    # the password lockout counts guesses only: a provider's refusal is not one
    assert session.scalars(select(SignInFailure)).all() == []


def test_disabled_account_is_refused_by_every_route(
    session: Session, jo: AppUser
) -> None:
    assert sign_in(session, "jo", password=PASSWORD, now=NOW).user_id == jo.user_id
    disable_user(session, "jo", now=NOW)
    claims = {"email": "jo.smith@example.org", "email_verified": True}
    with pytest.raises(AuthenticationError):
        sign_in_oidc(session, claims, now=NOW)
    with pytest.raises(AuthenticationError):
        sign_in(session, "jo", password=PASSWORD, now=NOW)
    assert _refusals(session) == [
        ("jo", "refused: disabled user"),
        ("jo", "refused: disabled user"),
    ]


def test_cli_users_add_email(run) -> None:  # type: ignore[no-untyped-def]
    run("centre", "add", "OI02")
    out = run("users", "add", "kim", "--role", "clinician", "--centre", "OI02",
              "--email", "Kim@Example.org")  # fmt: skip
    assert "user kim (clinician) added with password" in out
    out = run("users", "add", "lee", "--role", "viewer", "--centre", "OI02",
              "--email", "kim@example.org", code=2)  # fmt: skip
    assert "belongs to another user" in out
    out = run("users", "add", "lee", "--role", "viewer", "--centre", "OI02",
              "--email", "lee@", code=2)  # fmt: skip
    assert "malformed e-mail address 'lee@'" in out
