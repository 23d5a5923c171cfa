"""Dose-metric exports for projects: project pseudonyms, no centre, no linkage.

Same persons in two projects: the two exports share no identifier, the centre is
withheld unless the project grants analysis by centre, and a withdrawn person who was
not erased is left out (consent re-checked in the export's transaction).
"""

from __future__ import annotations

import datetime
import stat
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from cohort import consent, service
from cohort.centres import add_centre
from cohort.errors import PermissionDeniedError
from cohort.projects import add_member, attach
from cohort.users import add_user, get_user
from etl.deid.pseudonymise import pseudonym
from etl.ingest.run import run_import
from etl.store.export import ExportTable, dose_metric_table
from rtcohort.wiring import (
    CohortExportAccess,
    ingest_consent_check,
    project_keys_folder,
)
from tests.etl.ingest_corpus import write_patient
from tests.etl.ingest_db import KEY, Db, make_db
from tests.project_labels import project_label

DAY = datetime.date(2025, 3, 1)
TODAY = datetime.datetime.now(datetime.UTC).date()
PATIENTS = ("PX-1", "PX-2", "PX-3")  # PX-3 withdraws without erasure
VALUES = {"tg263_name", "roi_name", "volume_cc", "Mean[Gy]"}  # structure and dose


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    tmp = tmp_path_factory.mktemp("projects")
    made = make_db(request, tmp)
    db = next(made)
    for n, patient in enumerate(PATIENTS):
        write_patient(tmp / "in" / patient, patient, 310 + n)
    with db.factory.begin() as s:
        site = add_centre(s, "TST01")
        for patient in PATIENTS:
            consent.record_consent(
                s,
                centre=site,
                pseudonym=pseudonym(KEY, patient),
                state="consented",
                event_date=DAY,
                actor="test",
                year_of_birth=1960,
                sex="F",
            )
    summary = run_import(
        db.factory, [tmp / "in"], db.options(consent=ingest_consent_check())
    )
    assert summary.loaded == len(PATIENTS)
    with db.factory.begin() as s:
        admin = get_user(s, "admin")
        for code, centre_level in (("PA", False), ("PB", False), ("PC", True)):
            service.create_project(
                s,
                admin,
                code,
                name=code,
                protocol="v1",
                data_controller="TST01",
                expires_on=datetime.date(2099, 1, 1),
                today=TODAY,
                centre_level=centre_level,
            )
            ids = [
                consent.find_person(s, pseudonym(KEY, p)).person_id  # type: ignore[union-attr]
                for p in PATIENTS
            ]
            attach(s, code, ids, actor="test", today=TODAY)
        add_user(s, "res-a", "researcher", [], "password-123")
        add_member(s, "PA", "res-a", "analyst", today=TODAY)
        add_user(s, "res-ab", "researcher", [], "password-123")
        add_member(s, "PA", "res-ab", "analyst", today=TODAY)
        add_member(s, "PB", "res-ab", "analyst", today=TODAY)
        service.withdraw(
            s,
            admin,
            centre_code="TST01",
            pseudonym=pseudonym(KEY, "PX-3"),
            event_date=DAY,
            erase=False,
        )
    yield db
    next(made, None)


def _export(s: Session, user: str, project: str | None) -> ExportTable:
    return dose_metric_table(
        s,
        access=CohortExportAccess(s, user),
        project=project,
        metrics=["Mean[Gy]"],
    )


def _column(table: ExportTable, name: str) -> list[str]:
    i = table.header.index(name)
    return [r[i] for r in table.rows]


def test_project_key_is_created_with_the_project_private(db: Db) -> None:
    for code in ("PA", "PB", "PC"):
        path = project_keys_folder() / f"{code}.key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(path.read_bytes()) == 32


def test_two_projects_exports_cannot_be_linked(db: Db) -> None:
    with db.factory() as s:
        a, b = _export(s, "admin", "PA"), _export(s, "admin", "PB")
    kept = [pseudonym(KEY, p) for p in PATIENTS[:2]]  # PX-3 withdrew
    for code, table in (("PA", a), ("PB", b)):
        assert "centre" not in table.header
        assert not any("TST01" in cell for row in table.rows for cell in row)
        assert set(_column(table, "person_source_value")) == {
            project_label(code, p) for p in kept
        }
    assert a.header == b.header
    assert a.rows and len(a.rows) == len(b.rows)
    for name in a.header:
        shared = set(_column(a, name)) & set(_column(b, name))
        if name not in VALUES:
            assert not shared, name
    # the same dose values: only they (and structure names) are common
    assert sorted(_column(a, "Mean[Gy]")) == sorted(_column(b, "Mean[Gy]"))


def test_centre_level_project_keeps_the_centre(db: Db) -> None:
    with db.factory() as s:
        table = _export(s, "admin", "PC")
    assert set(_column(table, "centre")) == {"TST01"}
    assert all(p.startswith("P-PC-") for p in _column(table, "person_source_value"))


def test_researcher_sees_their_project_and_must_choose_among_several(db: Db) -> None:
    with db.factory() as s:
        own = _export(s, "res-a", None)
        assert sorted(own.rows) == sorted(_export(s, "admin", "PA").rows)
        with pytest.raises(PermissionDeniedError, match="one project at a time"):
            _export(s, "res-ab", None)
        with pytest.raises(PermissionDeniedError, match="PB"):
            _export(s, "res-a", "PB")


def test_centre_export_keeps_stored_pseudonyms_without_withdrawn(db: Db) -> None:
    with db.factory() as s:
        table = _export(s, "admin", None)
    assert set(_column(table, "person_source_value")) == {
        pseudonym(KEY, p) for p in PATIENTS[:2]
    }
    assert set(_column(table, "centre")) == {"TST01"}


def test_patient_export_of_a_project_uses_project_pseudonyms(db: Db) -> None:
    with db.factory() as s:
        rows = service.export_patients(s, get_user(s, "res-a"))
    assert {r.pseudonym for r in rows} == {
        project_label("PA", pseudonym(KEY, p)) for p in PATIENTS[:2]
    }
    assert {(r.person_id, r.centre) for r in rows} == {(0, "")}
