"""Bulk loader and content-addressed file store."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omop import cdm
from omop.bulk import bulk_insert
from omop.filestore import FileStore, FileStoreError, files_of_person, release_person


def _person(session: Session, source: str) -> cdm.Person:
    person = cdm.Person(
        gender_concept_id=8532,
        year_of_birth=1960,
        race_concept_id=0,
        ethnicity_concept_id=0,
        person_source_value=source,
    )
    session.add(person)
    session.flush()
    return person


def _measurements(person_id: int, n: int, start_id: int | None = None) -> list[dict]:
    day = datetime.date(2024, 1, 1)
    rows = []
    for i in range(n):
        row = {
            "person_id": person_id,
            "measurement_concept_id": 0,
            "measurement_date": day + datetime.timedelta(days=i % 365),
            "measurement_type_concept_id": 32817,
            "value_as_number": i * 0.5,
            "unit_concept_id": 0,
            "unit_source_value": "Gy",
        }
        if start_id is not None:
            row["measurement_id"] = start_id + i
        rows.append(row)
    return rows


def test_bulk_insert_writes_every_value(session: Session) -> None:
    person = _person(session, "T-BULK1")
    inserted = bulk_insert(
        session, cdm.Measurement, _measurements(person.person_id, 2500)
    )
    assert inserted == 2500
    total = session.scalar(
        select(func.sum(cdm.Measurement.value_as_number)).where(
            cdm.Measurement.person_id == person.person_id
        )
    )
    assert total == pytest.approx(0.5 * sum(range(2500)))


def _inserted_id(session: Session, person_id: int) -> int:
    """Insert one measurement the ordinary way; return the id the sequence gave."""
    row = cdm.Measurement(
        person_id=person_id,
        measurement_concept_id=0,
        measurement_date=datetime.date(2024, 5, 1),
        measurement_type_concept_id=32817,
    )
    session.add(row)
    session.flush()
    return int(row.measurement_id)


def test_bulk_insert_with_ids_keeps_the_sequence_ahead(session: Session) -> None:
    person = _person(session, "T-BULK2")
    bulk_insert(session, cdm.Measurement, _measurements(person.person_id, 10, 500_000))
    # an ordinary insert afterwards must not collide with the copied ids
    assert _inserted_id(session, person.person_id) > 500_009


def test_bulk_insert_rolls_back_with_the_callers_transaction(session: Session) -> None:
    person = _person(session, "T-BULK3")
    nested = session.begin_nested()
    bulk_insert(session, cdm.Measurement, _measurements(person.person_id, 5))
    nested.rollback()
    count = session.scalar(
        select(func.count())
        .select_from(cdm.Measurement)
        .where(cdm.Measurement.person_id == person.person_id)
    )
    assert count == 0


def test_bulk_insert_rejects_unknown_columns(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown columns"):
        bulk_insert(session, cdm.Measurement, [{"nope": 1}])


def test_file_store_round_trip_and_integrity(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    digest = store.put(b"dicom bytes")
    assert digest == hashlib.sha256(b"dicom bytes").hexdigest()
    assert store.put(b"dicom bytes") == digest  # stored once
    assert store.get(digest) == b"dicom bytes"
    assert list(tmp_path.rglob(".*.partial")) == []
    store.path(digest).write_bytes(b"tampered")
    with pytest.raises(FileStoreError, match="does not match"):
        store.get(digest)
    assert store.delete(digest)
    with pytest.raises(FileStoreError, match="not in the file store"):
        store.get(digest)


def test_file_ownership_and_release(session: Session, tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    a = _person(session, "T-FILE-A")
    b = _person(session, "T-FILE-B")
    only_a = store.put(b"a only")
    shared = store.put(b"shared")
    store.register(session, only_a, a.person_id)
    store.register(session, shared, a.person_id)
    store.register(session, shared, b.person_id)
    store.register(session, shared, b.person_id)  # idempotent
    assert sorted(files_of_person(session, a.person_id)) == sorted([only_a, shared])
    orphans = release_person(session, a.person_id)
    assert orphans == [only_a]  # the shared file is still owned by b
    assert files_of_person(session, a.person_id) == []


def test_bulk_insert_never_moves_a_sequence_backwards(
    session: Session, backend: str
) -> None:
    from sqlalchemy import text

    person = _person(session, "T-BULK4")
    ahead = 700_002
    if backend == "postgresql":
        # another writer took ids far ahead (sequences are not transactional)
        ahead = session.scalar(
            text(
                "SELECT setval(pg_get_serial_sequence('measurement', "
                "'measurement_id'), 900000)"
            )
        )
    bulk_insert(session, cdm.Measurement, _measurements(person.person_id, 3, 700_000))
    assert _inserted_id(session, person.person_id) > ahead
    # ids above the sequence (not taken from it) move it past them
    bulk_insert(session, cdm.Measurement, _measurements(person.person_id, 3, 1_000_000))
    assert _inserted_id(session, person.person_id) > 1_000_002


def test_register_many_matches_register(session: Session, tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    a = _person(session, "T-MANY-A")
    b = _person(session, "T-MANY-B")
    one, two = store.put(b"one"), store.put(b"two")
    store.register(session, one, a.person_id)
    store.register_many(
        session,
        [(one, a.person_id), (one, b.person_id), (two, b.person_id), (two, None)],
    )
    store.register_many(session, [(two, b.person_id)])  # idempotent
    assert files_of_person(session, a.person_id) == [one]
    assert sorted(files_of_person(session, b.person_id)) == sorted([one, two])
