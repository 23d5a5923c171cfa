"""The import's consent door, wired to the cohort's consent (both backends).

Declined or withdrawn: the DICOM is refused (not held) and nothing is stored; what
was held before the decline is purged, files included; a withdrawal between the
decision and the load is honoured by the load's own transaction.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cohort import consent, service
from cohort.centres import add_centre, get_centre
from cohort.erasure_files import finish_erasure
from cohort.errors import UnknownCentreError
from cohort.users import get_user
from etl.deid.pseudonymise import pseudonym
from etl.ingest import run
from etl.ingest.consent import REFUSED_REASON
from etl.ingest.run import run_import
from omop.cdm import Episode, Person
from omop.cohort_tables import AuditRecord
from omop.ingest_tables import IngestDataset, QuarantineItem
from rtcohort.wiring import ingest_consent_check
from tests.etl.ingest_corpus import write_patient
from tests.etl.ingest_db import KEY, Db, make_db

DAY = datetime.date(2025, 3, 1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("consent"))


def _record(db: Db, patient: str, *states: str) -> str:
    pseudo = pseudonym(KEY, patient)
    with db.factory.begin() as s:
        try:
            site = get_centre(s, "TST01")
        except UnknownCentreError:
            site = add_centre(s, "TST01")
        for state in states:
            consent.record_consent(
                s,
                centre=site,
                pseudonym=pseudo,
                state=state,
                event_date=DAY,
                actor="test",
                year_of_birth=1960,
                sex="F",
            )
    return pseudo


def _stored_files(db: Db) -> set[Path]:
    return {p for p in (db.root / "files").rglob("*") if p.is_file()}


def _rows_of(s: Session, pseudo: str) -> tuple[int, int, int]:
    pid = s.scalar(select(Person.person_id).where(Person.person_source_value == pseudo))
    held = s.scalar(
        select(func.count())
        .select_from(QuarantineItem)
        .where(QuarantineItem.person_source_value == pseudo)
    )
    episodes = s.scalar(
        select(func.count())
        .select_from(Episode)
        .where(Episode.person_id == pid, Episode.episode_concept_id == 32940)
    )
    datasets = s.scalar(
        select(func.count())
        .select_from(IngestDataset)
        .where(IngestDataset.person_id == pid)
    )
    return int(held or 0), int(episodes or 0), int(datasets or 0)


def test_declined_patient_dicom_is_refused_and_nothing_stored(
    db: Db, tmp_path: Path
) -> None:
    write_patient(tmp_path, "CN-1", 301)
    n_files = len(list(tmp_path.glob("*.dcm")))
    pseudo = _record(db, "CN-1", "approached", "declined")
    before = _stored_files(db)
    summary = run_import(
        db.factory, [tmp_path], db.options(consent=ingest_consent_check())
    )
    assert (summary.loaded, summary.datasets_held) == (0, 0)
    assert summary.refused == {REFUSED_REASON: n_files}
    assert not summary.quarantined
    with db.factory() as s:
        assert _rows_of(s, pseudo) == (0, 0, 0)
    assert _stored_files(db) == before


def test_held_items_and_files_are_purged_on_decline(db: Db, tmp_path: Path) -> None:
    write_patient(tmp_path, "CN-2", 302)
    n_files = len(list(tmp_path.glob("*.dcm")))
    pseudo = _record(db, "CN-2", "approached")
    first = run_import(
        db.factory, [tmp_path], db.options(consent=ingest_consent_check())
    )
    assert first.quarantined == {"no-consent": n_files}
    with db.factory() as s:
        hashes = set(
            s.scalars(
                select(QuarantineItem.sha256).where(
                    QuarantineItem.person_source_value == pseudo
                )
            )
        )
    store = db.options().store
    assert len(hashes) == n_files and all(store.path(h).exists() for h in hashes)
    with db.factory.begin() as s:
        service.record_consent(
            s,
            get_user(s, "admin"),
            centre_code="TST01",
            pseudonym=pseudo,
            state="declined",
            event_date=DAY,
            data_dir=db.root,
        )
    with db.factory.begin() as s:
        assert finish_erasure(s, db.root) == n_files
        assert _rows_of(s, pseudo)[0] == 0
        purge = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "held.purge")
        ).all()
        assert purge and f"{n_files} held item(s)" in purge[-1].detail
        assert pseudo not in purge[-1].detail
    assert not any(store.path(h).exists() for h in hashes)
    again = run_import(
        db.factory, [tmp_path], db.options(consent=ingest_consent_check())
    )
    assert again.refused == {REFUSED_REASON: n_files} and not again.quarantined


def test_withdrawal_between_decision_and_load_is_honoured(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_patient(tmp_path, "CN-3", 303)
    n_files = len(list(tmp_path.glob("*.dcm")))
    pseudo = _record(db, "CN-3", "consented")
    real_compute = run._compute
    before = _stored_files(db)

    def withdraw_then_compute(*args, **kwargs):  # type: ignore[no-untyped-def]
        _record(db, "CN-3", "withdrawn")  # committed after the resolution decided
        return real_compute(*args, **kwargs)

    monkeypatch.setattr(run, "_compute", withdraw_then_compute)
    summary = run_import(
        db.factory, [tmp_path], db.options(consent=ingest_consent_check())
    )
    assert summary.loaded == 0
    assert summary.refused == {REFUSED_REASON: n_files}
    with db.factory() as s:
        assert _rows_of(s, pseudo) == (0, 0, 0)
    assert _stored_files(db) == before
