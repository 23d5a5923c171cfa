"""The audit trail: a chain of keyed MACs, checkpointed to a file outside the database.

Each record carries its position ``seq`` (1, 2, ...), the MAC of the record before it
(``prev_hash``) and its own MAC (``record_hash``): HMAC-SHA-256, under a key kept in a
file outside the database (:mod:`cohort.audit_files`), of the previous MAC, the
position and the record's fields (time, actor, action, detail, number of persons).
Whoever can write the database but not read the key cannot rewrite a record and
recompute the chain. The persons a record concerns live in ``audit_person``, outside
the MACs, so erasure can delete them and the chain still verifies.

Truncation (deleting the newest records, or all of them) leaves a valid shorter chain;
it is caught by the **checkpoint log**, a file outside the database to which every
committed append adds one MAC'd line: chain length and head MAC (Certificate
Transparency's signed tree heads, scaled down). :func:`cohort.audit_check.verify`
requires every checkpoint line to match the chain.

Design of the checkpoint write. Appends happen in the caller's transaction, which may
still roll back, so a checkpoint written at append time could name records that never
existed. Instead :func:`record` marks the session, a ``before_commit`` hook reads the
chain head inside the committing transaction (still holding the append lock, so it is
exactly the head being committed, savepoints included), and an ``after_commit`` hook
writes that line. A checkpoint therefore never runs ahead of the database; a crash
between commit and write leaves the newest records unanchored (reported, not failed)
until the next append checkpoints them. Concurrent committers may write their lines
out of order; each line is checked on its own and the largest count bounds the chain.

Concurrency: on PostgreSQL an advisory transaction lock serialises appends; on SQLite
the database write lock does. ``prev_hash`` and ``seq`` are unique, so two writers can
never fork the chain.

Where the files are: :func:`bind` attaches an :class:`AuditFiles` to one engine, and
:func:`set_files_provider` sets the default of the process (``rtcohort.wiring`` sets it
from the settings).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, event, insert, select, text
from sqlalchemy.orm import Session, SessionTransaction

from cohort._time import utcnow
from cohort.audit_files import AuditFiles, AuditKey, append_checkpoint, load_key
from cohort.errors import AuditError
from omop.bulk import bulk_insert
from omop.cohort_tables import AuditPerson, AuditRecord

if TYPE_CHECKING:
    from cohort.audit_check import AuditCheck

__all__ = [
    "GENESIS",
    "AuditFiles",
    "appended_in_transaction",
    "bind",
    "current_key",
    "files_for",
    "last_hash",
    "legacy_hash",
    "record",
    "record_mac",
    "record_refusal",
    "records_for_person",
    "set_files_provider",
    "verify",
]

_LOG = logging.getLogger(__name__)

GENESIS = "0" * 64
_PG_LOCK = 72_550_001  # advisory lock key that serialises appends on PostgreSQL
_APPENDED = "rtcohort.audit.appended"  # session.info: files of the chain appended to
_HEAD = "rtcohort.audit.head"  # session.info: (files, count, head) to checkpoint
_REFUSALS = "rtcohort.audit.refusals"  # session.info: refusals to write after the tx

_BOUND: weakref.WeakKeyDictionary[Engine, AuditFiles] = weakref.WeakKeyDictionary()
_provider: Callable[[], AuditFiles] | None = None
_key_cache: dict[str, tuple[tuple[int, int, int], AuditKey]] = {}


def bind(engine: Engine, files: AuditFiles) -> None:
    """Use `files` (key and checkpoint log) for the audit trail of `engine`."""
    _BOUND[engine] = files


def set_files_provider(provider: Callable[[], AuditFiles] | None) -> None:
    """Set where the audit files are for engines not bound with :func:`bind`."""
    global _provider  # noqa: PLW0603 - one process-wide default, set by the wiring
    _provider = provider


def _engine_of(where: Session | Engine | Connection) -> Engine:
    bind_ = where.get_bind() if isinstance(where, Session) else where
    return bind_.engine if isinstance(bind_, Connection) else bind_


def files_for(where: Session | Engine | Connection) -> AuditFiles:
    """Return the audit files of the database behind `where`.

    Raises
    ------
    AuditError
        If neither :func:`bind` nor :func:`set_files_provider` configured them.
    """
    found = _BOUND.get(_engine_of(where))
    if found is not None:
        return found
    if _provider is None:
        msg = "audit trail not configured (no key file location); run via rtcohort"
        raise AuditError(msg)
    return _provider()


def current_key(files: AuditFiles) -> AuditKey:
    """Load the audit key (cached while the file is unchanged).

    Raises
    ------
    AuditKeyMissingError
        ``audit key missing: <path>; run rtcohort db upgrade``.
    """
    path = str(files.key_file)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        _key_cache.pop(path, None)
        return load_key(files.key_file)  # raises the missing-key error
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _key_cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    key = load_key(files.key_file)
    _key_cache[path] = (stamp, key)
    return key


def _payload(  # noqa: PLR0917
    prev: str, recorded_at_iso: str, actor: str, action: str, detail: str, n: int
) -> list[str]:
    return [prev, recorded_at_iso, actor, action, detail, str(n)]


def record_mac(  # noqa: PLR0917
    key: AuditKey,
    prev_hash: str,
    seq: int,
    recorded_at_iso: str,
    actor: str,
    action: str,
    detail: str,
    person_count: int,
) -> str:
    """Return the MAC of one record: hex HMAC-SHA-256 under the record sub-key."""
    fields = [
        str(seq),
        *_payload(prev_hash, recorded_at_iso, actor, action, detail, person_count),
    ]
    message = "\x1f".join(fields).encode("utf-8")
    return hmac.new(key.record_key, message, "sha256").hexdigest()


def legacy_hash(  # noqa: PLR0917
    prev_hash: str,
    recorded_at_iso: str,
    actor: str,
    action: str,
    detail: str,
    person_count: int,
) -> str:
    """Return the unkeyed SHA-256 of a record of the chain before keying (re-MAC only).

    Examples
    --------
    >>> len(legacy_hash(GENESIS, "2025-01-01T00:00:00+00:00", "a", "b", "c", 0))
    64
    """
    payload = "\x1f".join(
        _payload(prev_hash, recorded_at_iso, actor, action, detail, person_count)
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


#: Above this many persons, PostgreSQL gets a record's persons by ``COPY``.
_COPY_FROM = 500


def _head(session: Session) -> tuple[int, str]:
    found = session.execute(
        select(AuditRecord.seq, AuditRecord.record_hash)
        .order_by(AuditRecord.seq.desc())
        .limit(1)
    ).first()
    return (0, GENESIS) if found is None else (found[0], found[1])


def record(
    session: Session,
    actor: str,
    action: str,
    detail: str,
    person_ids: Iterable[int] = (),
) -> AuditRecord:
    """Append one record (in the caller's transaction) and return it.

    ``detail`` must not hold a person identifier: persons go in ``person_ids``. The
    checkpoint line is written when the transaction commits.

    Raises
    ------
    AuditKeyMissingError
        If the audit key file is missing; nothing is written.
    """
    files = files_for(session)
    key = current_key(files)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    seq, prev = _head(session)
    persons = sorted(set(person_ids))
    now = utcnow()
    row = AuditRecord(
        seq=seq + 1,
        recorded_at=now,
        actor=actor[:64],
        action=action[:50],
        detail=detail[:500],
        person_count=len(persons),
        prev_hash=prev,
        record_hash="",
    )
    row.record_hash = record_mac(
        key,
        prev,
        row.seq,
        now.isoformat(timespec="microseconds"),
        row.actor,
        row.action,
        row.detail,
        len(persons),
    )
    session.add(row)
    session.flush()
    if len(persons) > _COPY_FROM and session.get_bind().dialect.name == "postgresql":
        # The same rows streamed with COPY: an INSERT per person costs a round trip.
        bulk_insert(
            session, AuditPerson, ((row.record_id, p) for p in persons),
            columns=("record_id", "person_id"),
        )  # fmt: skip
    elif persons:
        session.execute(
            insert(AuditPerson),
            [{"record_id": row.record_id, "person_id": p} for p in persons],
        )
    session.info[_APPENDED] = files
    return row


def appended_in_transaction(session: Session) -> bool:
    """Whether `session` appended records that its transaction has not yet committed."""
    return _APPENDED in session.info


def _write_own(engine: Engine, actor: str, action: str, detail: str) -> None:
    from omop.engine import session_factory

    with session_factory(engine).begin() as own:
        record(own, actor, action, detail)


def record_refusal(
    session_or_engine: Session | Engine, username: str, action: str, reason: str
) -> None:
    """Audit a refused action in a transaction of its own (survives a rollback).

    Given an engine, or a session outside a transaction, the record is written and
    committed at once. Given a session inside a transaction, it is written in a new
    transaction as soon as that one ends (commit or rollback): writing it earlier
    would wait on the locks the caller holds (SQLite's write lock, the append lock on
    PostgreSQL). A session joined to a connection its caller owns (the test
    fixtures) has no independent transaction: the record goes into that session.

    Raises
    ------
    AuditKeyMissingError
        If the audit key file is missing (checked at once; nothing is written).
    """
    detail = f"refused: {reason}"
    files = files_for(session_or_engine)
    current_key(files)
    if isinstance(session_or_engine, Engine):
        _write_own(session_or_engine, username, action, detail)
        return
    session = session_or_engine
    bind_ = session.get_bind()
    if isinstance(bind_, Connection):
        record(session, username, action, detail)
    elif not session.in_transaction():
        _write_own(bind_, username, action, detail)
    else:
        session.info.setdefault(_REFUSALS, []).append((bind_, username, action, detail))


@event.listens_for(Session, "before_commit")
def _read_head(session: Session) -> None:
    files = session.info.pop(_APPENDED, None)
    if files is not None:
        count, head = _head(session)
        session.info[_HEAD] = (files, count, head)


@event.listens_for(Session, "after_commit")
def _write_checkpoint(session: Session) -> None:
    pending = session.info.pop(_HEAD, None)
    if pending is None:
        return
    files, count, head = pending
    append_checkpoint(files.checkpoints, current_key(files), count, head)


@event.listens_for(Session, "after_transaction_end")
def _after_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    session.info.pop(_APPENDED, None)
    session.info.pop(_HEAD, None)
    refusals: list[tuple[Engine, str, str, str]] = session.info.pop(_REFUSALS, [])
    for engine, actor, action, detail in refusals:
        try:
            _write_own(engine, actor, action, detail)
        except Exception:  # the caller's own error is already on its way
            _LOG.exception("could not audit a refusal of %s (%s)", actor, action)


def verify(session: Session) -> AuditCheck:
    """Check the chain and the checkpoint log; see :func:`cohort.audit_check.verify`."""
    from cohort.audit_check import verify as run

    return run(session)


def records_for_person(session: Session, person_id: int) -> list[AuditRecord]:
    """Return the records that concern a person, oldest first."""
    return list(
        session.scalars(
            select(AuditRecord)
            .join(AuditPerson, AuditPerson.record_id == AuditRecord.record_id)
            .where(AuditPerson.person_id == person_id)
            .order_by(AuditRecord.seq)
        )
    )


def last_hash(session: Session) -> str:
    """Return the MAC of the newest record (the chain head)."""
    return _head(session)[1]
