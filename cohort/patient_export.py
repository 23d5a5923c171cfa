"""The patient list and its export, as the permission layer and consent allow.

A list (:func:`patients_in_scope`) shows every visible patient with their consent
state. An export (:func:`export_patients`) also re-checks consent in its transaction:
only persons who consent to data use *now* leave (a withdrawn person who was not
erased, a declined one or one not yet consented stay behind). Researchers, and any
export for a project, see project pseudonyms without the centre
(:mod:`cohort.project_keys`) unless the project grants analysis by centre.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import audit
from cohort.consent_gate import consented_filter
from cohort.errors import PermissionDeniedError
from cohort.permissions import Action, Scope, scope_for
from cohort.project_keys import ProjectPseudonyms, for_project
from cohort.projects import get_project
from omop.cdm import CareSite, Person
from omop.cohort_tables import AppUser, Enrolment, Project, ProjectPatient

__all__ = ["PatientRow", "export_patients", "patients_in_scope", "project_view"]


@dataclass(frozen=True)
class PatientRow:
    """One visible patient (pseudonymised: no name, no contact).

    In a project export ``pseudonym`` is the project pseudonym, ``centre`` is empty
    unless the project grants analysis by centre, and ``person_id`` is 0 (the
    database id would link two projects' exports).
    """

    person_id: int
    pseudonym: str
    centre: str
    year_of_birth: int
    sex: str
    treatment_site: str
    state: str


def patients_in_scope(
    session: Session, scope: Scope, *, consented_only: bool = False
) -> list[PatientRow]:
    """Return the patients ``scope`` shows (with ``consented_only``: data use now)."""
    query = (
        select(
            Person.person_id,
            Person.person_source_value,
            CareSite.care_site_source_value,
            Person.year_of_birth,
            Person.gender_source_value,
            Enrolment.treatment_site,
            Enrolment.state,
        )
        .join(Enrolment, Enrolment.person_id == Person.person_id)
        .join(CareSite, CareSite.care_site_id == Person.care_site_id)
        .where(scope.person_filter(Person.person_id))
        .order_by(Person.person_id)
    )
    if consented_only:
        query = query.where(consented_filter(Person.person_id))
    return [
        PatientRow(int(p), str(s), str(c), int(y), str(g or ""), str(t), str(st))
        for p, s, c, y, g, t, st in session.execute(query).all()
    ]


def project_view(
    session: Session, scope: Scope, project: str | None, keys_folder: Path | None
) -> ProjectPseudonyms | None:
    """Return the project pseudonyms a reader with ``scope`` sees (None: stored).

    A project export uses that project's; a researcher without ``project`` uses
    their one active project's, and must name one when they have several.

    Raises
    ------
    PermissionDeniedError
        A researcher in several projects named none, or is not in ``project``.
    """
    if project is None and scope.project_ids is None:
        return None
    if project is None:
        ids = sorted(scope.project_ids or ())
        if len(ids) != 1:
            raise PermissionDeniedError(
                f"user {scope.username} belongs to {len(ids)} active projects: "
                "researchers export one project at a time (give the project)"
            )
        found = session.get(Project, ids[0])
        assert found is not None
        project = found.code
    elif scope.project_ids is not None and (
        get_project(session, project).project_id not in scope.project_ids
    ):
        raise PermissionDeniedError(
            f"user {scope.username} is not a member of an active project {project}"
        )
    return for_project(session, project, keys_folder)


def export_patients(
    session: Session,
    actor: AppUser,
    *,
    today: datetime.date | None = None,
    project: str | None = None,
    keys_folder: Path | None = None,
) -> list[PatientRow]:
    """Return the patients the user may export now (audited as an export).

    Parameters
    ----------
    project
        Export one project's patients, under its project pseudonyms. Researchers
        always get project pseudonyms (of their one active project by default).
    keys_folder
        The project key folder (default: the one the wiring set).

    Raises
    ------
    PermissionDeniedError
        The user may not export, or is a researcher in several projects and named
        none, or is not a member of ``project``.
    """
    scope = scope_for(session, actor, Action.EXPORT, today=today).require()
    view = project_view(session, scope, project, keys_folder)
    rows = patients_in_scope(session, scope, consented_only=True)
    if view is not None:
        members = set(
            session.scalars(
                select(ProjectPatient.person_id)
                .join(Project, Project.project_id == ProjectPatient.project_id)
                .where(Project.code == view.code)
            )
        )
        rows = [r for r in rows if r.person_id in members]
    audit.record(
        session,
        actor.username,
        "patients.export",
        f"{len(rows)} patients" + (f"; project {view.code}" if view else ""),
        [r.person_id for r in rows],
    )
    if view is None:
        return rows
    out = [
        replace(
            r,
            person_id=0,
            pseudonym=view.person(r.pseudonym),
            centre=r.centre if view.centre_level else "",
        )
        for r in rows
    ]
    return sorted(out, key=lambda r: r.pseudonym)
