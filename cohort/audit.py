"""The audit trail: append-only, hash-chained records; person references apart.

Each record's hash is SHA-256 over the previous record's hash and the record's own
fields (time, actor, action, detail, number of persons). The persons a record concerns
live in ``audit_person``, outside the chain, so erasure can delete them and the chain
still verifies. ``prev_hash`` is unique, so two writers can never fork the chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from cohort._time import as_utc, utcnow
from omop.cohort_tables import AuditPerson, AuditRecord

__all__ = [
    "GENESIS",
    "AuditCheck",
    "last_hash",
    "record",
    "record_hash",
    "records_for_person",
    "verify",
]

GENESIS = "0" * 64
_PG_LOCK = 72_550_001  # advisory lock key that serialises appends on PostgreSQL


def record_hash(  # noqa: PLR0917
    prev_hash: str,
    recorded_at_iso: str,
    actor: str,
    action: str,
    detail: str,
    person_count: int,
) -> str:
    """Return the chain hash of one record (hex SHA-256).

    Examples
    --------
    >>> len(record_hash(GENESIS, "2025-01-01T00:00:00+00:00", "a", "b", "c", 0))
    64
    """
    payload = "\x1f".join(
        (prev_hash, recorded_at_iso, actor, action, detail, str(person_count))
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _iso(row: AuditRecord) -> str:
    return as_utc(row.recorded_at).isoformat(timespec="microseconds")


def record(
    session: Session,
    actor: str,
    action: str,
    detail: str,
    person_ids: Iterable[int] = (),
) -> AuditRecord:
    """Append one record (in the caller's transaction) and return it.

    ``detail`` must not hold a person identifier: persons go in ``person_ids``.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    last = session.scalar(
        select(AuditRecord.record_hash).order_by(AuditRecord.record_id.desc()).limit(1)
    )
    prev = last or GENESIS
    persons = sorted(set(person_ids))
    now = utcnow()
    row = AuditRecord(
        recorded_at=now,
        actor=actor,
        action=action,
        detail=detail[:500],
        person_count=len(persons),
        prev_hash=prev,
        record_hash="",
    )
    row.record_hash = record_hash(
        prev,
        now.isoformat(timespec="microseconds"),
        actor,
        action,
        row.detail,
        len(persons),
    )
    session.add(row)
    session.flush()
    if persons:
        session.execute(
            insert(AuditPerson),
            [{"record_id": row.record_id, "person_id": p} for p in persons],
        )
    return row


@dataclass
class AuditCheck:
    """Result of :func:`verify`."""

    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the chain is intact."""
        return not self.problems


def verify(session: Session) -> AuditCheck:
    """Recompute the chain; report every record whose hash or link is wrong.

    Detects a changed field, a deleted or inserted record and a re-ordered chain.
    Truncation of the newest records is detectable only against a hash noted
    elsewhere (print the last hash with ``rtcohort audit verify``).
    """
    check = AuditCheck()
    prev = GENESIS
    for row in session.scalars(select(AuditRecord).order_by(AuditRecord.record_id)):
        check.records += 1
        if row.prev_hash != prev:
            check.problems.append(
                f"record {row.record_id}: link broken (a record before it was "
                "removed, inserted or changed)"
            )
        expected = record_hash(
            row.prev_hash,
            _iso(row),
            row.actor,
            row.action,
            row.detail,
            row.person_count,
        )
        if expected != row.record_hash:
            check.problems.append(f"record {row.record_id}: content does not match")
        prev = row.record_hash
    return check


def records_for_person(session: Session, person_id: int) -> list[AuditRecord]:
    """Return the records that concern a person, oldest first."""
    return list(
        session.scalars(
            select(AuditRecord)
            .join(AuditPerson, AuditPerson.record_id == AuditRecord.record_id)
            .where(AuditPerson.person_id == person_id)
            .order_by(AuditRecord.record_id)
        )
    )


def last_hash(session: Session) -> str:
    """Return the hash of the newest record (the chain head)."""
    found = session.scalar(
        select(AuditRecord.record_hash).order_by(AuditRecord.record_id.desc()).limit(1)
    )
    return found or GENESIS
