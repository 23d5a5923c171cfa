from __future__ import annotations

import pytest
from cohort_helpers import centre, enrol
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cohort import audit
from omop.cohort_tables import AuditPerson, AuditRecord


@pytest.fixture
def chain(session: Session) -> list[int]:
    pid = enrol(session, centre(session, "A1"), "A1-P")
    rows = [
        audit.record(session, "alice", "patients.read", f"read {i}", [pid])
        for i in range(4)
    ]
    assert audit.verify(session).ok
    return [r.record_id for r in rows]


@pytest.mark.parametrize(
    "field", ["actor", "action", "detail", "person_count", "record_hash"]
)
def test_changed_field_is_detected(
    session: Session, chain: list[int], field: str
) -> None:
    value: object = 99 if field == "person_count" else "mallory"
    session.execute(
        update(AuditRecord)
        .where(AuditRecord.record_id == chain[1])
        .values({field: value})
    )
    session.expire_all()
    check = audit.verify(session)
    assert not check.ok
    assert any(
        f"record {chain[1]}" in p or f"record {chain[2]}" in p for p in check.problems
    )


def test_deleted_record_is_detected(session: Session, chain: list[int]) -> None:
    session.execute(delete(AuditPerson).where(AuditPerson.record_id == chain[1]))
    session.execute(delete(AuditRecord).where(AuditRecord.record_id == chain[1]))
    session.expire_all()
    check = audit.verify(session)
    assert check.problems == [
        f"record {chain[2]}: link broken (a record before it was removed, inserted "
        "or changed)"
    ]


def test_erasing_person_references_keeps_chain_valid(
    session: Session, chain: list[int]
) -> None:
    session.execute(delete(AuditPerson))
    assert audit.verify(session).ok
    assert session.scalars(select(AuditRecord.person_count)).all() == [1, 1, 1, 1]


def test_mac_is_hmac_sha256_of_the_fields_under_the_record_subkey() -> None:
    import hashlib
    import hmac

    from cohort.audit_files import AuditKey

    secret = bytes(range(32))
    subkey = hmac.new(secret, b"rtcohort/audit/record/v1", hashlib.sha256).digest()
    fields = ["7", audit.GENESIS, "2025-01-01T00:00:00.000000+00:00", "a", "b", "c"]
    expected = hmac.new(
        subkey, "\x1f".join([*fields, "2"]).encode(), hashlib.sha256
    ).hexdigest()
    got = audit.record_mac(
        AuditKey(secret),
        audit.GENESIS,
        7,
        "2025-01-01T00:00:00.000000+00:00",
        "a",
        "b",
        "c",
        2,
    )
    assert got == expected


def test_legacy_hash_is_sha256_of_the_fields() -> None:
    import hashlib

    expected = hashlib.sha256(
        "\x1f".join(
            [audit.GENESIS, "2025-01-01T00:00:00.000000+00:00", "a", "b", "c", "2"]
        ).encode()
    ).hexdigest()
    assert (
        audit.legacy_hash(
            audit.GENESIS, "2025-01-01T00:00:00.000000+00:00", "a", "b", "c", 2
        )
        == expected
    )


def test_record_of_many_persons_links_each_once_and_keeps_chain(
    session: Session,
) -> None:
    # Above 500 persons PostgreSQL gets the links by COPY: the same rows.
    site = centre(session, "A1")
    pids = [enrol(session, site, f"A1-M{i}") for i in range(audit._COPY_FROM + 20)]
    first = audit.record(session, "alice", "patients.read", "many", [*pids, pids[0]])
    second = audit.record(session, "alice", "patients.read", "one", pids[:1])
    links = session.execute(select(AuditPerson.record_id, AuditPerson.person_id)).all()
    assert sorted(links) == sorted(
        [(first.record_id, p) for p in pids] + [(second.record_id, pids[0])]
    )
    assert first.person_count == len(pids)
    assert audit.verify(session).ok
