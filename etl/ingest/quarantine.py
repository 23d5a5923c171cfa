"""The quarantine: held files with their reason, in a table and on disk.

Files that fail before pseudonymisation (not DICOM, unreadable, no PatientID,
burned-in annotation) are kept as received under the quarantine folder, named by their
SHA-256, readable by the owner only (0600 files in 0700 folders). Pseudonymised files
held for a dataset-level reason (no consent, no structure set, ...) stay in the file
store and the row points there. Nothing is dropped: a held
file is either retried (``rtcohort quarantine retry``, or automatically by every import
run for the *waiting* reasons) or stays listed.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from etl.ingest.qa import WAITING, Finding
from omop.ingest_tables import QuarantineItem
from omop.private_files import write_private

__all__ = [
    "HoldStatus",
    "held_counts",
    "held_items",
    "hold",
    "list_items",
    "release",
    "stash_raw",
]


class HoldStatus(StrEnum):
    """State of a quarantine row."""

    HELD = "held"
    RELEASED = "released"


def stash_raw(folder: Path, data: bytes) -> Path:
    """Keep a file as received under ``folder/<sha256>.held`` (atomic; idempotent).

    The file holds identifiers: it is created 0600 in folders created 0700.
    """
    digest = hashlib.sha256(data).hexdigest()
    target = folder / f"{digest}.held"
    if not target.exists():
        write_private(target, data)
    return target


def hold(
    session: Session,
    *,
    path: str,
    source_path: str,
    sha256: str,
    finding: Finding,
    centre: str,
    pseudonymised: bool,
    person_source_value: str | None = None,
    group_key: str | None = None,
) -> QuarantineItem:
    """Record a held file; the same file held for the same reason is recorded once."""
    existing = session.scalar(
        select(QuarantineItem).where(
            QuarantineItem.sha256 == sha256,
            QuarantineItem.reason_code == finding.reason.value,
            QuarantineItem.status == HoldStatus.HELD.value,
        )
    )
    if existing is not None:
        existing.reason = finding.detail[:500]
        existing.path = path
        if person_source_value is not None:
            existing.person_source_value = person_source_value
        return existing
    item = QuarantineItem(
        path=path,
        source_path=source_path,
        sha256=sha256,
        reason_code=finding.reason.value,
        reason=finding.detail[:500],
        centre=centre,
        pseudonymised=pseudonymised,
        person_source_value=person_source_value,
        group_key=group_key,
        status=HoldStatus.HELD.value,
        received_at=datetime.datetime.now(datetime.UTC),
    )
    session.add(item)
    session.flush()
    return item


def list_items(
    session: Session, *, include_released: bool = False
) -> list[QuarantineItem]:
    """Return quarantine rows, oldest first (held only unless asked)."""
    query = select(QuarantineItem).order_by(QuarantineItem.quarantine_id)
    if not include_released:
        query = query.where(QuarantineItem.status == HoldStatus.HELD.value)
    return list(session.scalars(query))


def held_counts(session: Session) -> list[tuple[str, str, int]]:
    """Return ``(centre, reason_code, count)`` of the held items (SQL aggregation)."""
    rows = session.execute(
        select(QuarantineItem.centre, QuarantineItem.reason_code, func.count())
        .where(QuarantineItem.status == HoldStatus.HELD.value)
        .group_by(QuarantineItem.centre, QuarantineItem.reason_code)
        .order_by(QuarantineItem.centre, QuarantineItem.reason_code)
    ).all()
    return [(str(c), str(r), int(n)) for c, r, n in rows]


def held_items(
    session: Session, *, centre: str | None = None, waiting_only: bool = True
) -> list[QuarantineItem]:
    """Return held, pseudonymised rows that a later import may resolve."""
    query = select(QuarantineItem).where(
        QuarantineItem.status == HoldStatus.HELD.value,
        QuarantineItem.pseudonymised.is_(True),
    )
    if waiting_only:
        query = query.where(QuarantineItem.reason_code.in_(sorted(WAITING)))
    if centre is not None:
        query = query.where(QuarantineItem.centre == centre)
    return list(session.scalars(query.order_by(QuarantineItem.quarantine_id)))


def release(session: Session, sha256s: Iterable[str]) -> int:
    """Mark the held rows of these files released (loaded); return how many."""
    hashes = sorted(set(sha256s))
    if not hashes:
        return 0
    now = datetime.datetime.now(datetime.UTC)
    count = 0
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        result = session.execute(
            update(QuarantineItem)
            .where(
                QuarantineItem.sha256.in_(chunk),
                QuarantineItem.status == HoldStatus.HELD.value,
            )
            .values(status=HoldStatus.RELEASED.value, resolved_at=now)
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    return count
