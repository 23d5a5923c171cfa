"""Permission matrix: every role x every read/export function x own/other centre x
in/out of project, asserting exactly who sees what."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cohort_helpers import D, centre, enrol, user
from sqlalchemy.orm import Session

from cohort import service
from cohort.contacts import ContactDetails, store_contact
from cohort.errors import PermissionDeniedError
from cohort.projects import add_member, attach, create_project
from etl.deid.keys import CentreKey
from omop.cdm import Person
from omop.cohort_tables import AppUser
from tests.project_labels import labels

TODAY = D(2025, 6, 1)
KEY_A = CentreKey("A", bytes(32))
KEY_B = CentreKey("B", bytes(range(32)))


@dataclass
class World:
    users: dict[str, AppUser]
    people: dict[str, int]


@pytest.fixture
def world(session: Session) -> World:
    a, b = centre(session, "A"), centre(session, "B")
    people = {
        "pa1": enrol(session, a, "A-pa1"),
        "pa2": enrol(session, a, "A-pa2"),
        "pb1": enrol(session, b, "B-pb1"),
        "pb2": enrol(session, b, "B-pb2"),
    }
    for name, pid in people.items():
        person = session.get(Person, pid)
        assert person is not None
        key = KEY_A if name.startswith("pa") else KEY_B
        store_contact(session, key, person, ContactDetails(name=f"Name {name}"))
    users = {
        "admin": user(session, "u-admin", "admin", []),
        "dm_a": user(session, "u-dm", "data_manager", ["A"]),
        "clin_a": user(session, "u-clin", "clinician", ["A"]),
        "res": user(session, "u-res", "researcher", []),
        "res_none": user(session, "u-res0", "researcher", []),
        "viewer_a": user(session, "u-view", "viewer", ["A"]),
        "patient": user(session, "u-pat", "patient", []),
    }
    create_project(
        session,
        "P",
        name="p",
        protocol="x",
        data_controller="c",
        expires_on=D(2026, 1, 1),
        today=D(2025, 1, 1),
    )
    create_project(
        session,
        "Q",
        name="q",
        protocol="x",
        data_controller="c",
        expires_on=D(2025, 3, 1),
        today=D(2025, 1, 1),
    )
    add_member(session, "P", "u-res", "analyst", today=D(2025, 1, 1))
    add_member(session, "Q", "u-res", "analyst", today=D(2025, 1, 1))
    attach(session, "P", [people["pa1"], people["pb1"]], actor="t", today=D(2025, 1, 2))
    attach(session, "Q", [people["pb2"]], actor="t", today=D(2025, 1, 2))
    return World(users, people)


ROLES = ["admin", "dm_a", "clin_a", "res", "res_none", "viewer_a", "patient"]
ALL4 = {"pa1", "pa2", "pb1", "pb2"}
OWN = {"pa1", "pa2"}
PROJECT = {"pa1", "pb1"}  # Q expired: pb2 is not granted
DENIED = None

EXPECTED: dict[str, dict[str, Any]] = {
    "list_patients": {
        "admin": ALL4,
        "dm_a": OWN,
        "clin_a": OWN,
        "res": PROJECT,
        "res_none": DENIED,
        "viewer_a": DENIED,
        "patient": DENIED,
    },
    "export_patients": {
        "admin": ALL4,
        "dm_a": OWN,
        "clin_a": DENIED,
        "res": PROJECT,
        "res_none": DENIED,
        "viewer_a": DENIED,
        "patient": DENIED,
    },
    "names_own_centre": {
        "admin": DENIED,
        "dm_a": {"Name pa1", "Name pa2"},
        "clin_a": {"Name pa1", "Name pa2"},
        "res": DENIED,
        "res_none": DENIED,
        "viewer_a": DENIED,
        "patient": DENIED,
    },
    "names_other_centre": dict.fromkeys(ROLES, DENIED),
    "schedule_own_centre": {
        "admin": "ok",
        "dm_a": "ok",
        "clin_a": "ok",
        "res": DENIED,
        "res_none": DENIED,
        "viewer_a": DENIED,
        "patient": DENIED,
    },
    "schedule_other_centre": {
        "admin": "ok",
        "dm_a": DENIED,
        "clin_a": DENIED,
        "res": DENIED,
        "res_none": DENIED,
        "viewer_a": DENIED,
        "patient": DENIED,
    },
    "recruitment": {
        "admin": {"A", "B"},
        "dm_a": {"A", "centre-1"},
        "clin_a": {"A", "centre-1"},
        "res": DENIED,
        "res_none": DENIED,
        "viewer_a": {"A", "centre-1"},
        "patient": DENIED,
    },
    "audit_show": {
        "admin": "ok",
        "dm_a": DENIED,
        "clin_a": DENIED,
        "res": DENIED,
        "res_none": DENIED,
        "viewer_a": DENIED,
        "patient": DENIED,
    },
}


def _exported(session: Session, actor: AppUser, by_id: dict[int, str]) -> set[str]:
    """Exported persons; a researcher's rows carry project P's pseudonyms only."""
    rows = service.export_patients(session, actor, today=TODAY)
    if actor.role != "researcher":
        return {by_id[r.person_id] for r in rows}
    assert all(r.person_id == 0 and r.centre == "" for r in rows)
    stored = {
        str(session.get(Person, pid).person_source_value): name  # type: ignore[union-attr]
        for pid, name in by_id.items()
    }
    back = labels("P", stored)
    return {stored[back[r.pseudonym]] for r in rows}


def _call(name: str, session: Session, actor: AppUser, w: World) -> Any:
    by_id = {v: k for k, v in w.people.items()}
    calls: dict[str, Callable[[], Any]] = {
        "list_patients": lambda: {
            by_id[r.person_id]
            for r in service.list_patients(session, actor, today=TODAY)
        },
        "export_patients": lambda: _exported(session, actor, by_id),
        "names_own_centre": lambda: set(
            service.patient_names(session, actor, centre_code="A", key=KEY_A).values()
        ),
        "names_other_centre": lambda: set(
            service.patient_names(session, actor, centre_code="B", key=KEY_B).values()
        ),
        "schedule_own_centre": lambda: (
            (
                service.schedule_due(session, actor, centre_code="A", today=TODAY)
                and "ok"
            )
            or "ok"
        ),
        "schedule_other_centre": lambda: (
            (
                service.schedule_due(session, actor, centre_code="B", today=TODAY)
                and "ok"
            )
            or "ok"
        ),
        "recruitment": lambda: {
            r.centre
            for r in service.recruitment_report(
                session, actor, start=D(2025, 1, 1), end=D(2025, 12, 31)
            )
        },
        "audit_show": lambda: (
            (service.audit_show(session, actor, pseudonym="A-pa1") and "ok") or "ok"
        ),
    }
    return calls[name]()


@pytest.mark.parametrize("function", sorted(EXPECTED))
def test_permission_matrix(session: Session, world: World, function: str) -> None:
    for role in ROLES:
        expected = EXPECTED[function][role]
        actor = world.users[role]
        if expected is DENIED:
            with pytest.raises(PermissionDeniedError):
                _call(function, session, actor, world)
        else:
            assert _call(function, session, actor, world) == expected, (function, role)


def test_completion_report_anonymises_other_centres(
    session: Session, world: World
) -> None:
    from cohort_helpers import prom

    prom(session, world.people["pa1"], "m3", D(2025, 4, 1))
    prom(session, world.people["pb1"], "m3", D(2025, 4, 1))
    labels = {
        r.centre for r in service.completion_report(session, world.users["viewer_a"])
    }
    assert labels == {"A", "centre-1"}
    with pytest.raises(PermissionDeniedError):
        service.completion_report(session, world.users["res"])


def test_reads_are_audited_with_persons(session: Session, world: World) -> None:
    from cohort.audit import records_for_person

    before = len(records_for_person(session, world.people["pb1"]))
    service.list_patients(session, world.users["res"], today=TODAY)
    after = records_for_person(session, world.people["pb1"])
    assert len(after) == before + 1
    assert after[-1].actor == "u-res"
    assert after[-1].action == "patients.read"
    assert all(
        r.action != "patients.read"
        for r in records_for_person(session, world.people["pb2"])
    )
