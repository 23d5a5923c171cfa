"""Erasure of a person's files, after the database transaction commits.

:func:`cohort.erasure.erase_person` returns the SHA-256 hashes of the files the
erased rows named and no remaining row names. They are found on disk by hash under
the data directory:

- the content-addressed file store ``<data_dir>/files`` (pseudonymised DICOM of
  loaded, held and quarantined datasets);
- the import quarantine ``<data_dir>/quarantine/<sha256>.held``;
- every inbox under the data directory (a folder with an ``inbox-index.jsonl``,
  :mod:`etl.arrive.inbox`): the received objects listed with that hash, and their index
  lines (which name their UIDs).

- the person's files outside the database's reach, found before commit by
  :func:`cohort.erasure_outside.find_outside` (receiver rejects, audit copies, also
  outside the data directory) and registered inboxes outside the data directory.

Crash safety: before the erasure commits, :func:`write_journal` records the hashes
(hashes only, no identifier; for outside files also the erased ``person_id``) in
``<data_dir>/erasure-pending/``. After commit, :func:`finish_erasure` deletes the
files and then the journal. A crash in between leaves the journal; the next erasure
(or any call of :func:`finish_erasure`) deletes the leftovers. A file is deleted only
when no row names its hash, and an outside file only when its person row is gone, so
a journal of an erasure that rolled back deletes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from cohort.erasure import unreferenced
from cohort.erasure_outside import delete_outside, outside_inbox_roots
from etl.arrive.inbox import INDEX_NAME, forget
from omop.cdm import Person
from omop.filestore import FileStore
from omop.private_files import make_private_dirs, write_private

__all__ = ["JOURNAL_DIR", "finish_erasure", "pending_hashes", "write_journal"]

_LOG = logging.getLogger(__name__)

#: Folder of the data directory that holds the journals of unfinished erasures.
JOURNAL_DIR = "erasure-pending"
_STORE_DIR = "files"
_QUARANTINE_DIR = "quarantine"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_journal(
    data_dir: Path,
    hashes: Iterable[str],
    *,
    outside: Iterable[str] = (),
    person_id: int | None = None,
) -> Path | None:
    """Record the hashes an erasure will delete (call before commit).

    Parameters
    ----------
    data_dir
        The data directory.
    hashes
        Files named by the erased rows (``ErasureReport.orphan_files``).
    outside
        The person's files outside the database (``ErasureReport.outside_files``);
        deleted later only if ``person_id`` is then gone from PERSON.
    person_id
        The person being erased (required with ``outside``).

    Returns
    -------
    Path or None
        The journal file, or None when there is nothing to delete.
    """
    listed = sorted(set(hashes))
    beyond = sorted(set(outside))
    if not listed and not beyond:
        return None
    if beyond and person_id is None:
        raise ValueError("outside files need the person_id of the erasure")
    folder = make_private_dirs(Path(data_dir) / JOURNAL_DIR)
    target = folder / f"{uuid.uuid4().hex}.json"
    body: object = (
        listed
        if not beyond
        else {"hashes": listed, "outside": beyond, "person_id": person_id}
    )
    write_private(target, json.dumps(body).encode("utf-8"))
    _fsync(folder)
    return target


def _journals(data_dir: Path) -> list[Path]:
    folder = Path(data_dir) / JOURNAL_DIR
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _read(journal: Path) -> tuple[list[str], list[str], int | None]:
    try:
        body = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OSError(f"{journal}: unreadable erasure journal ({exc})") from exc
    if isinstance(body, list):
        return [str(h) for h in body], [], None
    person = body.get("person_id")
    return (
        [str(h) for h in body.get("hashes", [])],
        [str(h) for h in body.get("outside", [])],
        int(person) if person is not None else None,
    )


def pending_hashes(data_dir: Path) -> set[str]:
    """Return the hashes of database-named files of unfinished erasures."""
    found: set[str] = set()
    for journal in _journals(data_dir):
        found.update(_read(journal)[0])
    return found


def _pending_outside(session: Session, data_dir: Path) -> set[str]:
    """Outside hashes of journals whose person is gone (committed erasures)."""
    found: set[str] = set()
    for journal in _journals(data_dir):
        _hashes, outside, person_id = _read(journal)
        if outside and person_id is not None and session.get(Person, person_id) is None:
            found.update(outside)
    return found


def _inbox_roots(data_dir: Path) -> Iterator[Path]:
    """Folders under the data directory that are inboxes (not the file store)."""
    root = Path(data_dir)
    for folder, subdirs, files in os.walk(root):
        here = Path(folder)
        if here == root:
            subdirs[:] = [d for d in subdirs if d not in (_STORE_DIR, JOURNAL_DIR)]
        if INDEX_NAME in files:
            yield here
    yield from outside_inbox_roots(root)


def _delete_by_hash(data_dir: Path, hashes: set[str]) -> int:
    deleted = 0
    store = FileStore(Path(data_dir) / _STORE_DIR)
    quarantine = Path(data_dir) / _QUARANTINE_DIR
    for digest in sorted(hashes):
        if store.delete(digest):
            deleted += 1
        held = quarantine / f"{digest}.held"
        if held.exists():
            held.unlink()
            deleted += 1
    for inbox in _inbox_roots(data_dir):
        deleted += forget(inbox, hashes)
    return deleted


def finish_erasure(
    session: Session,
    data_dir: Path,
    hashes: Iterable[str] = (),
    outside: Iterable[str] = (),
) -> int:
    """Delete the files of committed erasures; return how many files were deleted.

    Deletes ``hashes`` and every hash of the pending journals that no row of the
    database names (a journal of a rolled-back erasure names files still in use:
    those are kept), ``outside`` and the outside files of journals whose person is
    gone, then removes the journals. Idempotent.

    Parameters
    ----------
    session
        Read only: which hashes rows still name, which persons exist.
    data_dir
        The data directory (``Settings.data_dir``).
    hashes
        The ``orphan_files`` of the erasure just committed.
    outside
        The ``outside_files`` of the erasure just committed.
    """
    journals = _journals(data_dir)
    wanted = set(hashes) | pending_hashes(data_dir)
    beyond = set(outside) | _pending_outside(session, data_dir)
    if not wanted and not beyond:
        for journal in journals:
            journal.unlink(missing_ok=True)
        return 0
    deleted = 0
    if wanted:
        deleted += _delete_by_hash(data_dir, unreferenced(session, wanted))
    deleted += delete_outside(Path(data_dir), beyond)
    for journal in journals:
        journal.unlink(missing_ok=True)
    if deleted:
        _LOG.info("erasure: %d file(s) deleted", deleted)
    return deleted
