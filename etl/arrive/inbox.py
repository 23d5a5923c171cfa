"""The DICOM inbox: atomic, versioned, content-addressed storage of received objects.

Layout (a contract other tools rely on)::

    INBOX/<StudyInstanceUID>/<SOPInstanceUID>.dcm        first version
    INBOX/<StudyInstanceUID>/<SOPInstanceUID>.v2.dcm     a later, different object
    INBOX/inbox-index.jsonl                              one JSON line per stored file

No other file in the inbox ends in ``.dcm``; temporary files are
``.<name>.<random>.partial`` in the target folder and are removed at start-up. An
identical re-send (same bytes, SHA-256) is acknowledged and not stored again.
Rejected data goes to a quarantine folder *outside* the inbox (default: the sibling
``<INBOX>-quarantine``) as ``<time>-<sha256 prefix>.held`` plus a ``.reason.json``
(reason, caller, and the pseudonym of the PatientID when the centre key is known).
Folders are created 0700 and files 0600 (:mod:`omop.private_files`): the inbox and the
quarantine hold identifiable data as received.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from etl.errors import EtlError
from omop.private_files import make_private_dirs, open_private

__all__ = [
    "INDEX_NAME",
    "Inbox",
    "InboxError",
    "StoreOutcome",
    "StoreStatus",
    "check_uids",
    "forget",
]

_LOG = logging.getLogger(__name__)
INDEX_NAME = "inbox-index.jsonl"
_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_MAX_UID = 64


def check_uids(study_uid: str, sop_uid: str) -> None:
    """Refuse a StudyInstanceUID or SOPInstanceUID that is not a valid UID.

    Raises
    ------
    InboxError
        Naming the attribute: a UID other than dot-separated digits (``..``, ``/``)
        or longer than 64 characters.
    """
    for label, uid in (("StudyInstanceUID", study_uid), ("SOPInstanceUID", sop_uid)):
        if not _UID_RE.match(uid) or len(uid) > _MAX_UID:
            raise InboxError(f"{label} {uid[:70]!r} is not a valid UID")


class InboxError(EtlError, ValueError):
    """An object cannot be filed (its UIDs are not valid UIDs)."""


class StoreStatus(StrEnum):
    """Result of filing one object."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    NEW_VERSION = "new-version"


@dataclass(frozen=True)
class StoreOutcome:
    """Where an object went and whether it was new."""

    status: StoreStatus
    path: Path
    version: int


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` to `fd` (a seam for disk-full tests)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_temp(target: Path, data: bytes) -> Path:
    """Write `data` to a new 0600 temporary file beside `target`, fsync; return it.

    On any error the temporary file is removed and the error re-raised.
    """
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    fd = open_private(tmp, os.O_WRONLY | os.O_EXCL)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_new_file(target: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `target`, fsync, then rename into place.

    On any error (disk full included) the temporary file is removed and the error is
    re-raised; `target` is never left half-written. The file is created 0600.
    """
    tmp = _write_temp(target, data)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def is_disk_full(exc: OSError) -> bool:
    """Return True for "no space left" and "quota exceeded" errors."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


class Inbox:
    """An inbox folder (thread-safe within one process).

    Parameters
    ----------
    root : path
        The inbox folder (created if missing).
    quarantine : path, optional
        Where rejected data goes; default ``<root>-quarantine`` beside the inbox.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        quarantine: str | os.PathLike[str] | None = None,
    ) -> None:
        self.root = Path(root)
        make_private_dirs(self.root)
        self.quarantine_dir = (
            Path(quarantine)
            if quarantine is not None
            else self.root.with_name(self.root.name + "-quarantine")
        )
        self._lock = threading.Lock()
        self._hashes: dict[Path, str] = {}
        for stale in self.root.rglob(".*.partial"):
            stale.unlink(missing_ok=True)

    def _find(self, folder: Path, sop_uid: str, digest: str) -> StoreOutcome:
        """Return the stored copy (DUPLICATE) or the free name and its status.

        The caller holds the lock.
        """
        version = 1
        while True:
            name = f"{sop_uid}.dcm" if version == 1 else f"{sop_uid}.v{version}.dcm"
            path = folder / name
            if not path.exists():
                status = StoreStatus.STORED if version == 1 else StoreStatus.NEW_VERSION
                return StoreOutcome(status, path, version)
            if self._digest(path) == digest:
                return StoreOutcome(StoreStatus.DUPLICATE, path, version)
            version += 1

    def _digest(self, path: Path) -> str:
        if path not in self._hashes:
            self._hashes[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._hashes[path]

    def store(
        self, data: bytes, study_uid: str, sop_uid: str, caller: str = ""
    ) -> StoreOutcome:
        """File one encoded object; see the module docstring for the layout.

        Raises
        ------
        InboxError
            If a UID is not a valid UID (it would not be a safe file name).
        OSError
            If writing fails (disk full: see :func:`is_disk_full`); nothing is left.
        """
        check_uids(study_uid, sop_uid)
        digest = hashlib.sha256(data).hexdigest()
        folder = self.root / study_uid
        with self._lock:
            make_private_dirs(folder)
            found = self._find(folder, sop_uid, digest)
        if found.status is StoreStatus.DUPLICATE:
            return found
        # written and flushed outside the lock: parallel associations overlap their
        # fsyncs (one at a time, the disk's latency bounded the whole receiver)
        tmp = _write_temp(found.path, data)
        try:
            with self._lock:  # another association may have filed it meanwhile
                found = self._find(folder, sop_uid, digest)
                if found.status is StoreStatus.DUPLICATE:
                    return found
                os.replace(tmp, found.path)
                self._hashes[found.path] = digest
        finally:
            tmp.unlink(missing_ok=True)  # left only when not renamed
        _fsync_dir(folder)
        status, path, version = found.status, found.path, found.version
        with self._lock:
            self._index(
                {
                    "file": str(path.relative_to(self.root)),
                    "study_uid": study_uid,
                    "sop_instance_uid": sop_uid,
                    "version": version,
                    "sha256": digest,
                    "bytes": len(data),
                    "status": status.value,
                    "caller": caller,
                    "received_utc": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
        if status is StoreStatus.NEW_VERSION:
            _LOG.warning(
                "new version %d of SOP instance %s stored as %s",
                version,
                sop_uid,
                path.name,
            )
        return StoreOutcome(status, path, version)

    def _index(self, record: dict[str, object]) -> None:
        fd = open_private(self.root / INDEX_NAME, os.O_WRONLY | os.O_APPEND)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def quarantine(
        self, data: bytes, reason: str, caller: str = "", pseudonym: str | None = None
    ) -> Path:
        """Hold rejected data and its reason outside the inbox; return the file.

        ``pseudonym``, the keyed pseudonym of the data's PatientID when the receiver
        has the centre key, goes into the ``.reason.json``: erasure finds the file by
        it (:mod:`cohort.erasure_outside`).
        """
        make_private_dirs(self.quarantine_dir)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        digest = hashlib.sha256(data).hexdigest()[:16]
        held = self.quarantine_dir / f"{stamp}-{digest}.held"
        write_new_file(held, data)
        note = {
            "reason": reason,
            "caller": caller,
            "bytes": len(data),
            "held": held.name,
        }
        if pseudonym:
            note["pseudonym"] = pseudonym
        write_new_file(
            held.with_suffix(".reason.json"), json.dumps(note, indent=1).encode()
        )
        _LOG.warning("quarantined %s from %s: %s", held.name, caller or "?", reason)
        return held


def forget(root: str | os.PathLike[str], hashes: set[str]) -> int:
    """Delete the inbox files with these SHA-256 hashes and their index lines.

    Used by erasure: the index names the objects' UIDs, so the lines go too (the
    index is rewritten atomically). Return how many files were deleted.
    """
    folder = Path(root)
    index = folder / INDEX_NAME
    if not hashes or not index.exists():
        return 0
    kept: list[str] = []
    deleted = 0
    for line in index.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            kept.append(line)
            continue
        if record.get("sha256") not in hashes:
            kept.append(line)
            continue
        target = folder / str(record.get("file", ""))
        if target.is_file() and folder.resolve() in target.resolve().parents:
            target.unlink()
            deleted += 1
    write_new_file(index, "".join(f"{line}\n" for line in kept).encode("utf-8"))
    return deleted
