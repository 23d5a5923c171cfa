"""Collaboration projects: members with roles, attached patients, expiry.

A project past its ``expires_on`` date grants nothing (the permission layer ignores
it) and accepts no new members or patients.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort._time import utcnow
from cohort.centres import get_centre
from cohort.consent import ConsentState, TreatmentSite
from cohort.errors import (
    DuplicateError,
    InvalidInputError,
    ProjectExpiredError,
    UnknownProjectError,
)
from cohort.users import get_user
from omop.cohort_tables import Enrolment, Project, ProjectMember, ProjectPatient

__all__ = [
    "PatientRule",
    "ProjectRole",
    "active_project_ids",
    "add_member",
    "attach",
    "attach_by_rule",
    "attach_new",
    "create_project",
    "get_project",
    "matching_person_ids",
]


class ProjectRole(StrEnum):
    """A member's role in a project."""

    LEAD = "lead"
    ANALYST = "analyst"


def create_project(
    session: Session,
    code: str,
    *,
    name: str,
    protocol: str,
    data_controller: str,
    expires_on: datetime.date,
    today: datetime.date,
) -> Project:
    """Create a project; its expiry must lie in the future."""
    code = code.strip()
    if not code or len(code) > 50:  # noqa: PLR2004
        raise InvalidInputError("project code must have 1-50 characters")
    if expires_on <= today:
        raise ProjectExpiredError(f"project {code}: expiry {expires_on} is not future")
    if session.scalar(select(Project).where(Project.code == code)) is not None:
        raise DuplicateError(f"project {code} exists already")
    project = Project(
        code=code,
        name=name,
        protocol=protocol,
        data_controller=data_controller,
        expires_on=expires_on,
        created_at=utcnow(),
    )
    session.add(project)
    session.flush()
    return project


def get_project(
    session: Session, code: str, *, today: datetime.date | None = None
) -> Project:
    """Return a project; with ``today``, refuse an expired one."""
    project = session.scalar(select(Project).where(Project.code == code.strip()))
    if project is None:
        raise UnknownProjectError(f"unknown project {code!r}")
    if today is not None and project.expires_on < today:
        raise ProjectExpiredError(
            f"project {project.code} expired on {project.expires_on}; nothing changed"
        )
    return project


def add_member(
    session: Session,
    project_code: str,
    username: str,
    role: ProjectRole | str,
    *,
    today: datetime.date,
) -> ProjectMember:
    """Add a user to an active project (or change their role)."""
    project = get_project(session, project_code, today=today)
    user = get_user(session, username)
    try:
        the_role = ProjectRole(str(role))
    except ValueError:
        raise InvalidInputError(f"project role {role!r}: use lead|analyst") from None
    member = session.get(ProjectMember, (project.project_id, user.user_id))
    if member is None:
        member = ProjectMember(project_id=project.project_id, user_id=user.user_id)
        session.add(member)
    member.role = the_role.value
    session.flush()
    return member


def attach(
    session: Session,
    project_code: str,
    person_ids: Iterable[int],
    *,
    actor: str,
    today: datetime.date,
    rule: str | None = None,
) -> int:
    """Attach consented persons to an active project; return how many were new.

    See :func:`attach_new`, which returns the new persons themselves.
    """
    new = attach_new(
        session, project_code, person_ids, actor=actor, today=today, rule=rule
    )
    return len(new)


def attach_new(
    session: Session,
    project_code: str,
    person_ids: Iterable[int],
    *,
    actor: str,
    today: datetime.date,
    rule: str | None = None,
) -> list[int]:
    """Attach consented persons to an active project; return the newly attached ids.

    Persons already in the project are left as they are and not returned.

    Raises
    ------
    ProjectExpiredError
        When the project is past its expiry.
    InvalidInputError
        When a person's consent does not cover data use.
    """
    project = get_project(session, project_code, today=today)
    ids = sorted(set(person_ids))
    consenting = set(
        session.scalars(
            select(Enrolment.person_id).where(
                Enrolment.person_id.in_(ids),
                Enrolment.state == ConsentState.CONSENTED.value,
                Enrolment.scope_data.is_(True),
            )
        )
    )
    missing = [p for p in ids if p not in consenting]
    if missing:
        raise InvalidInputError(
            f"{len(missing)} person(s) have no consent for data use; nothing attached"
        )
    present = set(
        session.scalars(
            select(ProjectPatient.person_id).where(
                ProjectPatient.project_id == project.project_id,
                ProjectPatient.person_id.in_(ids),
            )
        )
    )
    now = utcnow()
    new = [p for p in ids if p not in present]
    session.add_all(
        ProjectPatient(
            project_id=project.project_id,
            person_id=p,
            attached_by=actor,
            attached_at=now,
            rule=rule,
        )
        for p in new
    )
    session.flush()
    return new


@dataclass(frozen=True)
class PatientRule:
    """Which consented patients a project takes (None: any)."""

    centres: Sequence[str] | None = None
    sites: Sequence[TreatmentSite | str] | None = None

    def describe(self) -> str:
        """Return the rule as text (stored with each attachment)."""
        parts = []
        if self.centres:
            parts.append("centre=" + ",".join(self.centres))
        if self.sites:
            parts.append("site=" + ",".join(str(s) for s in self.sites))
        return ";".join(parts) or "all"


def matching_person_ids(
    session: Session,
    rule: PatientRule,
    allowed_person_ids: Iterable[int] | None = None,
) -> set[int]:
    """Return the consented (data use) persons matching ``rule``."""
    query = select(Enrolment.person_id).where(
        Enrolment.state == ConsentState.CONSENTED.value,
        Enrolment.scope_data.is_(True),
    )
    if rule.centres:
        ids = [get_centre(session, c).care_site_id for c in rule.centres]
        query = query.where(Enrolment.care_site_id.in_(ids))
    if rule.sites:
        query = query.where(
            Enrolment.treatment_site.in_([TreatmentSite(str(s)) for s in rule.sites])
        )
    found = set(session.scalars(query))
    if allowed_person_ids is not None:
        found &= set(allowed_person_ids)
    return found


def attach_by_rule(
    session: Session,
    project_code: str,
    rule: PatientRule,
    *,
    actor: str,
    today: datetime.date,
    allowed_person_ids: Iterable[int] | None = None,
) -> int:
    """Attach every consented patient matching ``rule``; return how many were new."""
    found = matching_person_ids(session, rule, allowed_person_ids)
    return attach(
        session, project_code, found, actor=actor, today=today, rule=rule.describe()
    )


def active_project_ids(
    session: Session, user_id: int, today: datetime.date
) -> frozenset[int]:
    """Return the projects the user belongs to that have not expired."""
    return frozenset(
        session.scalars(
            select(Project.project_id)
            .join(ProjectMember, ProjectMember.project_id == Project.project_id)
            .where(ProjectMember.user_id == user_id, Project.expires_on >= today)
        )
    )
