"""The permission layer: ONE place that turns (user, action) into a filter.

The model in one paragraph: an admin sees every patient (never their names); a data
manager and a clinician see the patients of their own centres (names too, from the
contact register); a data manager may also export and erase them. A researcher sees
only the patients of the projects they belong to that have not expired, and only
pseudonymised. A viewer sees aggregates only: their own centres by name, the others
anonymised. A patient sees nothing here (only their own form, through a signed link).
Every read and export of patient-level data goes through :func:`scope_for`.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, false, select, true
from sqlalchemy.orm import QueryableAttribute, Session

from cohort.audit import record_refusal
from cohort.errors import PermissionDeniedError
from cohort.projects import active_project_ids
from cohort.users import Role, user_centre_ids
from omop.cdm import CareSite, Person
from omop.cohort_tables import AppUser, Project, ProjectPatient

__all__ = ["Action", "Scope", "anonymised_labels", "scope_for"]


class Action(StrEnum):
    """What a user wants to do."""

    READ_PATIENTS = "read_patients"
    EXPORT = "export"
    READ_CONTACTS = "read_contacts"
    WRITE = "write"
    ERASE = "erase"
    READ_AGGREGATES = "read_aggregates"
    MANAGE = "manage"
    READ_AUDIT = "read_audit"


_ALL = "all"
_OWN = "own centres"
_PROJECTS = "projects"

# role -> action -> which persons (absent: denied).
_MATRIX: dict[Role, dict[Action, str]] = {
    Role.ADMIN: {
        Action.READ_PATIENTS: _ALL,
        Action.EXPORT: _ALL,
        Action.WRITE: _ALL,
        Action.ERASE: _ALL,
        Action.READ_AGGREGATES: _ALL,
        Action.MANAGE: _ALL,
        Action.READ_AUDIT: _ALL,
    },
    Role.DATA_MANAGER: {
        Action.READ_PATIENTS: _OWN,
        Action.EXPORT: _OWN,
        Action.READ_CONTACTS: _OWN,
        Action.WRITE: _OWN,
        Action.ERASE: _OWN,
        Action.READ_AGGREGATES: _OWN,
    },
    Role.CLINICIAN: {
        Action.READ_PATIENTS: _OWN,
        Action.READ_CONTACTS: _OWN,
        Action.WRITE: _OWN,
        Action.READ_AGGREGATES: _OWN,
    },
    Role.RESEARCHER: {
        Action.READ_PATIENTS: _PROJECTS,
        Action.EXPORT: _PROJECTS,
    },
    Role.VIEWER: {Action.READ_AGGREGATES: _OWN},
    Role.PATIENT: {},
}


@dataclass(frozen=True)
class Scope:
    """What one user may see for one action.

    Attributes
    ----------
    allowed
        Whether the action is allowed at all.
    centre_ids
        Centres whose patients are visible (None: every centre).
    project_ids
        For researchers: the active projects whose patients are visible.
    pseudonymised
        Whether identifying context (names, centre of a patient) is withheld.
    named_centre_ids
        For aggregates: centres shown by code (None: all); others anonymised.
    """

    username: str
    role: Role
    action: Action
    allowed: bool
    centre_ids: frozenset[int] | None = None
    project_ids: frozenset[int] | None = None
    pseudonymised: bool = False
    named_centre_ids: frozenset[int] | None = None
    on_refusal: Callable[[str], None] | None = field(
        default=None, compare=False, repr=False
    )

    def deny(self, reason: str) -> PermissionDeniedError:
        """Audit a refusal (:func:`cohort.audit.record_refusal`); return the error."""
        if self.on_refusal is not None:
            self.on_refusal(reason)
        return PermissionDeniedError(reason)

    def require(self) -> Scope:
        """Return self, or audit the refusal and raise PermissionDeniedError."""
        if not self.allowed:
            raise self.deny(
                f"user {self.username} ({self.role.value}) may not {self.action.value}"
            )
        return self

    def require_centre(self, centre: CareSite) -> Scope:
        """Return self if the centre's patients are in scope, else refuse (audited).

        Writes are scoped this way: a user writes only to the centres
        :meth:`centre_allowed` names.
        """
        self.require()
        if not self.centre_allowed(centre.care_site_id):
            raise self.deny(
                f"user {self.username} may not {self.action.value} at centre "
                f"{centre.care_site_source_value}"
            )
        return self

    def require_project(self, project: Project) -> Scope:
        """Refuse (audited) a researcher who is not in the active ``project``."""
        self.require()
        if self.project_ids is not None and project.project_id not in self.project_ids:
            raise self.deny(
                f"user {self.username} is not a member of an active project "
                f"{project.code}"
            )
        return self

    def require_centre_selection(self, centre: CareSite) -> Scope:
        """Refuse (audited) selecting patients by ``centre`` outside the scope.

        Pseudonymised scopes (researchers) may not select by centre at all.
        """
        self.require()
        if self.pseudonymised:
            raise self.deny(
                f"user {self.username} ({self.role.value}) sees pseudonymised data "
                "and may not select patients by centre"
            )
        return self.require_centre(centre)

    def project_filter(
        self, person_id: ColumnElement[int] | QueryableAttribute[int], project: Project
    ) -> ColumnElement[bool]:
        """Return the persons of ``project`` visible in this scope (checked first)."""
        self.require_project(project)
        return and_(
            self.person_filter(person_id),
            person_id.in_(
                select(ProjectPatient.person_id).where(
                    ProjectPatient.project_id == project.project_id
                )
            ),
        )

    def person_filter(
        self, person_id: ColumnElement[int] | QueryableAttribute[int]
    ) -> ColumnElement[bool]:
        """Return a SQL condition on ``person_id`` selecting the visible persons."""
        if not self.allowed:
            return false()
        if self.project_ids is not None:
            return person_id.in_(
                select(ProjectPatient.person_id).where(
                    ProjectPatient.project_id.in_(sorted(self.project_ids))
                )
            )
        if self.centre_ids is None:
            return true()
        return person_id.in_(
            select(Person.person_id).where(
                Person.care_site_id.in_(sorted(self.centre_ids))
            )
        )

    def centre_allowed(self, care_site_id: int) -> bool:
        """Whether the centre's patients are visible by centre membership."""
        if not self.allowed or self.project_ids is not None:
            return False
        return self.centre_ids is None or care_site_id in self.centre_ids


def scope_for(
    session: Session,
    user: AppUser,
    action: Action | str,
    *,
    today: datetime.date | None = None,
) -> Scope:
    """Return the scope of ``user`` for ``action`` (see ``allowed``, ``require``).

    Every refusal raised through the scope (:meth:`Scope.require` and its
    relatives) is audited with :func:`cohort.audit.record_refusal`.
    """
    role = Role(user.role)
    the_action = Action(action)
    rule = _MATRIX[role].get(the_action)
    name = user.username

    def refused(reason: str) -> None:
        record_refusal(session, name, the_action.value, reason)

    scope = _scope(session, user, role, the_action, rule, today)
    return replace(scope, on_refusal=refused)


def _scope(  # noqa: PLR0917
    session: Session,
    user: AppUser,
    role: Role,
    the_action: Action,
    rule: str | None,
    today: datetime.date | None,
) -> Scope:
    name = user.username
    if rule is None:
        return Scope(name, role, the_action, allowed=False)
    if rule == _ALL:
        return Scope(name, role, the_action, allowed=True)
    if rule == _PROJECTS:
        day = today or datetime.datetime.now(datetime.UTC).date()
        projects = active_project_ids(session, user.user_id, day)
        return Scope(
            name,
            role,
            the_action,
            allowed=bool(projects),
            project_ids=projects,
            pseudonymised=True,
        )
    centres = user_centre_ids(session, user)
    if the_action is Action.READ_AGGREGATES:
        return Scope(name, role, the_action, allowed=True, named_centre_ids=centres)
    return Scope(name, role, the_action, allowed=bool(centres), centre_ids=centres)


def anonymised_labels(
    care_site_ids: Iterable[int], codes: dict[int, str], named: frozenset[int] | None
) -> dict[int, str]:
    """Return display labels: named centres by code, the others ``centre-1..n``.

    The anonymous numbering follows a hash of the code, not the code's order, so the
    labels reveal nothing about which centre is which.
    """
    ids = sorted(set(care_site_ids))
    labels: dict[int, str] = {}
    hidden = [i for i in ids if named is not None and i not in named]
    hidden.sort(key=lambda i: hashlib.sha256(codes.get(i, str(i)).encode()).hexdigest())
    for i in ids:
        if named is None or i in named:
            labels[i] = codes.get(i, str(i))
    for n, i in enumerate(hidden, start=1):
        labels[i] = f"centre-{n}"
    return labels
