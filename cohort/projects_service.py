"""Collaboration projects in the cohort service API: create, members, attach.

Managers only; audited. Re-exported by :mod:`cohort.service`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from cohort import audit, project_keys, projects
from cohort.errors import InvalidInputError
from cohort.permissions import Action, scope_for
from cohort.project_keys import ensure_project_key
from cohort.service_lookup import person_by_pseudonym
from omop.cohort_tables import AppUser

__all__ = ["Attachment", "add_project_member", "attach_to_project", "create_project"]


def create_project(
    session: Session,
    actor: AppUser,
    code: str,
    *,
    name: str,
    protocol: str,
    data_controller: str,
    expires_on: datetime.date,
    today: datetime.date,
    centre_level: bool = False,
    keys_folder: Path | None = None,
) -> None:
    """Create a collaboration project and its pseudonym key (managers only).

    The key file ``<keys_folder>/<CODE>.key`` (default: the folder the wiring set,
    :mod:`cohort.project_keys`) is created 0600; ``centre_level`` records that the
    protocol grants analysis by centre.
    """
    scope_for(session, actor, Action.MANAGE).require()
    project = projects.create_project(
        session,
        code,
        name=name,
        protocol=protocol,
        data_controller=data_controller,
        expires_on=expires_on,
        today=today,
    )
    project.centre_level = centre_level
    ensure_project_key(project_keys.keys_folder(keys_folder), project.code)


def add_project_member(
    session: Session,
    actor: AppUser,
    project_code: str,
    username: str,
    role: str,
    *,
    today: datetime.date,
) -> None:
    """Give a user a role in a project (managers only); audited."""
    scope_for(session, actor, Action.MANAGE).require()
    projects.add_member(session, project_code, username, role, today=today)
    audit.record(
        session, actor.username, "project.member", f"{project_code} {username} {role}"
    )


@dataclass(frozen=True)
class Attachment:
    """What an attachment did.

    Attributes
    ----------
    project_code : str
        The project.
    count : int
        How many persons were newly attached.
    person_ids : tuple of int
        The persons concerned (audited): the named patient, or those a rule attached.
    """

    project_code: str
    count: int
    person_ids: tuple[int, ...]


def attach_to_project(
    session: Session,
    actor: AppUser,
    project_code: str,
    *,
    today: datetime.date,
    pseudonym: str | None = None,
    rule: projects.PatientRule | None = None,
) -> Attachment:
    """Attach one patient (by pseudonym) or every patient matching a rule.

    Managers only; audited as ``project.attach`` with the newly attached persons.

    Raises
    ------
    PermissionDeniedError
        When ``actor`` may not manage.
    InvalidInputError
        When both or neither of ``pseudonym`` and ``rule`` are given, or a person
        lacks consent for data use.
    UnknownPersonError
        When no person has the pseudonym.
    """
    scope_for(session, actor, Action.MANAGE).require()
    if (pseudonym is None) == (rule is None):
        raise InvalidInputError("give a patient or a rule, not both")
    if rule is not None:
        new = projects.attach_new(
            session,
            project_code,
            projects.matching_person_ids(session, rule),
            actor=actor.username,
            today=today,
            rule=rule.describe(),
        )
        concerned = new
    else:
        assert pseudonym is not None
        person_id = person_by_pseudonym(session, pseudonym).person_id
        new = projects.attach_new(
            session, project_code, [person_id], actor=actor.username, today=today
        )
        concerned = [person_id]
    audit.record(
        session,
        actor.username,
        "project.attach",
        f"{project_code} n={len(new)}",
        concerned,
    )
    return Attachment(project_code, len(new), tuple(concerned))
