"""The demo's accounts: one per role per demo centre, a researcher, the admin.

``clinician-<centre>``, ``data-manager-<centre>`` and ``viewer-<centre>`` (centre code
in lower case, e.g. ``clinician-hus``), ``researcher`` (analyst of the ``DEMO``
project, to which the consented demo patients are attached) and ``admin``. All share
one password: ``RTCOHORT_DEMO_PASSWORD`` when set, otherwise one generated and shown
once. Idempotent: existing accounts keep their passwords.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

__all__ = ["DEMO_PROJECT", "DemoAccount", "demo_password", "ensure_demo_accounts"]

DEMO_PROJECT = "DEMO"
_CENTRE_ROLES = (("clinician", "clinician"), ("data-manager", "data_manager"),
                 ("viewer", "viewer"))  # fmt: skip


@dataclass(frozen=True)
class DemoAccount:
    """One demo account as printed."""

    username: str
    role: str
    centre: str
    created: bool


def demo_password(configured: str | None) -> tuple[str, bool]:
    """Return the demo password and whether it was generated.

    >>> demo_password("chosen-password")
    ('chosen-password', False)
    """
    if configured:
        return configured, False
    return secrets.token_urlsafe(12), True


def ensure_demo_accounts(
    session: Session,
    codes: list[str],
    password: str,
    *,
    admin: str = "admin",
    today: datetime.date | None = None,
) -> list[DemoAccount]:
    """Create the demo accounts that are missing; return every demo account.

    The ``DEMO`` project (researcher ``analyst``) is created by ``admin`` through the
    audited service functions, and the consented patients are attached to it.
    """
    from cohort import projects
    from cohort.errors import UnknownProjectError, UnknownUserError
    from cohort.service import (
        acting_user,
        add_project_member,
        attach_to_project,
        create_project,
    )
    from cohort.users import add_user, get_user

    day = today or datetime.datetime.now(datetime.UTC).date()
    out: list[DemoAccount] = []

    def ensure(name: str, role: str, centres: list[str]) -> None:
        try:
            get_user(session, name)
            created = False
        except UnknownUserError:
            add_user(session, name, role, centres, password)
            created = True
        out.append(DemoAccount(name, role, ",".join(centres) or "-", created))

    for code in codes:
        for prefix, role in _CENTRE_ROLES:
            ensure(f"{prefix}-{code.lower()}", role, [code])
    ensure("researcher", "researcher", [])
    actor = acting_user(session, admin)
    try:
        projects.get_project(session, DEMO_PROJECT, today=day)
    except UnknownProjectError:
        create_project(
            session, actor, DEMO_PROJECT, name="Demo project",
            protocol="DEMO-PROTOCOL", data_controller="Demo consortium",
            expires_on=day + datetime.timedelta(days=730), today=day,
        )  # fmt: skip
    add_project_member(session, actor, DEMO_PROJECT, "researcher", "analyst", today=day)
    attach_to_project(
        session, actor, DEMO_PROJECT, today=day, rule=projects.PatientRule()
    )
    out.append(DemoAccount(admin, "admin", "-", False))
    return out
