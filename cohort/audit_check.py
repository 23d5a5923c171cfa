"""Verifying the audit trail, and keying it (once) at ``rtcohort db upgrade``.

:func:`verify` recomputes every record MAC with the key and checks every line of the
checkpoint log against the chain, so a changed record, a deleted record (in the
middle, at the end, or all of them), and a chain recomputed without the key (plain
SHA-256 or another key) are each reported, as is a checkpoint line whose MAC is wrong.

:func:`ensure_key` creates the audit key the first time. A chain that exists by then
was written by the unkeyed version (SHA-256 hashes): it is checked as such, re-MACed
with the new key in the same transaction, and a record ``audit.rekey`` is appended
saying how many records were re-MACed and whether the unkeyed chain was intact, so a
break found at that moment stays on the keyed record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort._time import as_utc
from cohort.audit import (
    GENESIS,
    appended_in_transaction,
    current_key,
    files_for,
    legacy_hash,
    record,
    record_mac,
)
from cohort.audit_files import AuditFiles, Checkpoint, create_key, read_checkpoints
from cohort.errors import AuditKeyError, AuditKeyMissingError
from omop.cohort_tables import AuditRecord

__all__ = ["AuditCheck", "ensure_key", "verify"]


@dataclass
class AuditCheck:
    """Result of :func:`verify`.

    Attributes
    ----------
    records
        Number of records in the chain.
    checkpointed
        Largest chain length named by a valid checkpoint line (0 if none).
    problems
        One line per mismatch; empty when the trail is intact.
    """

    records: int = 0
    checkpointed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the chain and the checkpoint log are intact."""
        return not self.problems


def _iso(row: AuditRecord) -> str:
    return as_utc(row.recorded_at).isoformat(timespec="microseconds")


def verify(session: Session) -> AuditCheck:
    """Recompute the chain with the key and check it against every checkpoint line.

    The checkpoint log is read before the chain, so every line names records
    committed before the chain is read (no false alarm from concurrent appends).
    Records newer than the last checkpoint are allowed (a crash between commit and
    checkpoint, or appends of this very transaction), but a chain with records and
    no checkpoint at all is not, unless this session appended them itself.
    A missing or damaged key is reported as a problem.
    """
    check = AuditCheck()
    files = files_for(session)
    try:
        key = current_key(files)
    except (AuditKeyMissingError, AuditKeyError) as exc:
        check.problems.append(str(exc))
        return check
    points, bad_lines = read_checkpoints(files.checkpoints, key)
    check.problems.extend(bad_lines)
    wanted = {p.count for p in points}
    heads: dict[int, str] = {}
    prev = GENESIS  # the MAC covers seq, so the links and MACs also check numbering
    for row in session.scalars(select(AuditRecord).order_by(AuditRecord.seq)):
        check.records += 1
        where = f"record {row.record_id}"
        if row.prev_hash != prev:
            check.problems.append(
                f"{where}: link broken (a record before it was removed, inserted "
                "or changed)"
            )
        expected = record_mac(
            key,
            row.prev_hash,
            row.seq,
            _iso(row),
            row.actor,
            row.action,
            row.detail,
            row.person_count,
        )
        if expected != row.record_hash:
            check.problems.append(f"{where}: content does not match its MAC")
        if row.seq in wanted:
            heads[row.seq] = row.record_hash
        prev = row.record_hash
    _check_points(check, files, points, heads, appended_in_transaction(session))
    return check


def _check_points(
    check: AuditCheck,
    files: AuditFiles,
    points: list[Checkpoint],
    heads: dict[int, str],
    uncommitted: bool,
) -> None:
    log = files.checkpoints
    for p in points:
        if p.count > check.records:
            check.problems.append(
                f"{log} line {p.line}: checkpoint of {p.count} records but the "
                f"database holds {check.records} (records were deleted)"
            )
        elif p.count > 0 and heads.get(p.count) != p.head:
            check.problems.append(
                f"{log} line {p.line}: record {p.count} differs from its checkpoint "
                "(the chain was rewritten)"
            )
    check.checkpointed = max((p.count for p in points), default=0)
    if check.records and not points and not check.problems and not uncommitted:
        check.problems.append(
            f"{log}: no checkpoint for the {check.records} records "
            "(the checkpoint log is missing or was emptied)"
        )


def ensure_key(session: Session, files: AuditFiles | None = None) -> list[str]:
    """Create the audit key if missing and key an existing unkeyed chain; messages.

    Raises
    ------
    AuditKeyMissingError
        If the key is missing but the checkpoint log holds lines: those were made
        with the lost key, and a new key could never verify them.
    AuditKeyError
        If the key file exists but is damaged.
    """
    files = files or files_for(session)
    path: Path = files.key_file
    if path.exists():
        current_key(files)
        return []
    log = files.checkpoints
    if log.exists() and log.stat().st_size > 0:
        msg = (
            f"audit key missing: {path}, but {log} holds checkpoints made with it; "
            "restore the key from its backup (a new key cannot verify them)"
        )
        raise AuditKeyMissingError(msg)
    key = create_key(path)
    messages = [f"created audit key {path} (fingerprint {key.fingerprint})"]
    rows = list(session.scalars(select(AuditRecord).order_by(AuditRecord.record_id)))
    if not rows:
        return messages
    broken = 0
    prev_old = prev_new = GENESIS
    for seq, row in enumerate(rows, start=1):
        iso = _iso(row)
        fields = (row.actor, row.action, row.detail, row.person_count)
        if row.prev_hash != prev_old or row.record_hash != legacy_hash(
            row.prev_hash, iso, *fields
        ):
            broken += 1
        prev_old = row.record_hash
        row.seq = seq
        row.prev_hash = prev_new
        row.record_hash = record_mac(key, prev_new, seq, iso, *fields)
        prev_new = row.record_hash
    session.flush()
    state = "intact" if not broken else f"BROKEN at {broken} records"
    note = (
        f"{len(rows)} records of the unkeyed SHA-256 chain ({state}) re-MACed "
        f"with audit key {key.fingerprint}"
    )
    record(session, "rtcohort", "audit.rekey", note)
    messages.append(f"audit trail: {note}")
    return messages
