"""cohort.service project functions called directly (as a web page would)."""

from __future__ import annotations

import pytest
from cohort_helpers import D, centre, enrol, user
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import service
from cohort.audit import records_for_person
from cohort.errors import InvalidInputError, PermissionDeniedError, UnknownPersonError
from cohort.projects import PatientRule
from omop.cohort_tables import AuditRecord, Project, ProjectPatient

TODAY = D(2025, 6, 1)


def _project(session: Session, code: str = "P1") -> None:
    admin = user(session, "boss", "admin", [])
    service.create_project(
        session,
        admin,
        code,
        name="Breast NTCP",
        protocol="PR-1",
        data_controller="UMC",
        expires_on=D(2027, 1, 1),
        today=TODAY,
    )


def _attached(session: Session, code: str) -> set[int]:
    return set(
        session.scalars(
            select(ProjectPatient.person_id)
            .join(Project, Project.project_id == ProjectPatient.project_id)
            .where(Project.code == code)
        )
    )


def test_attach_by_rule_returns_new_persons_and_audits(session: Session):
    a, b = centre(session, "A"), centre(session, "B")
    a1 = enrol(session, a, "A-1")
    a2 = enrol(session, a, "A-2", treatment_site="lung")
    enrol(session, a, "A-3", state="declined")
    enrol(session, b, "B-1")
    _project(session)
    admin = service.acting_user(session, "boss")

    done = service.attach_to_project(
        session, admin, "P1", today=TODAY, rule=PatientRule(["A"], None)
    )
    assert (done.count, set(done.person_ids)) == (2, {a1, a2})
    assert _attached(session, "P1") == {a1, a2}
    again = service.attach_to_project(
        session, admin, "P1", today=TODAY, rule=PatientRule(["A"], ["breast"])
    )
    assert (again.count, again.person_ids) == (0, ())
    details = [r.detail for r in records_for_person(session, a1)]
    assert details == ["P1 n=2"]


def test_attach_one_patient_by_pseudonym(session: Session):
    a = centre(session, "A")
    a1 = enrol(session, a, "A-1")
    _project(session)
    admin = service.acting_user(session, "boss")
    first = service.attach_to_project(
        session, admin, "P1", today=TODAY, pseudonym="A-1"
    )
    second = service.attach_to_project(
        session, admin, "P1", today=TODAY, pseudonym="A-1"
    )
    assert (first.count, first.person_ids) == (1, (a1,))
    assert (second.count, second.person_ids) == (0, (a1,))
    assert [r.detail for r in records_for_person(session, a1)] == ["P1 n=1", "P1 n=0"]
    with pytest.raises(UnknownPersonError, match="unknown person A-9"):
        service.attach_to_project(session, admin, "P1", today=TODAY, pseudonym="A-9")
    with pytest.raises(InvalidInputError, match="not both"):
        service.attach_to_project(
            session, admin, "P1", today=TODAY, pseudonym="A-1", rule=PatientRule()
        )


def test_project_functions_require_manage(session: Session):
    a = centre(session, "A")
    enrol(session, a, "A-1")
    _project(session)
    clinician = user(session, "doc", "clinician", ["A"])
    user(session, "res", "researcher", [])
    with pytest.raises(PermissionDeniedError):
        service.attach_to_project(
            session, clinician, "P1", today=TODAY, pseudonym="A-1"
        )
    with pytest.raises(PermissionDeniedError):
        service.add_project_member(
            session, clinician, "P1", "res", "analyst", today=TODAY
        )
    assert _attached(session, "P1") == set()
    admin = service.acting_user(session, "boss")
    service.add_project_member(session, admin, "P1", "res", "lead", today=TODAY)
    actions = session.scalars(
        select(AuditRecord.detail).where(AuditRecord.action == "project.member")
    ).all()
    assert actions == ["P1 res lead"]
