"""Content-addressed file store under the data directory.

Files are named by the SHA-256 of their bytes (``<root>/ab/cd/<sha256>``), written
atomically (temporary file, fsync, rename), so the same content is stored once and a
crash never leaves a half-written file under a real name. Folders are created 0700 and
files 0600 (:mod:`omop.private_files`). The database records which
person owns which file (``stored_file_owner``) so that erasure can remove them.

Examples
--------
>>> import tempfile, pathlib
>>> store = FileStore(pathlib.Path(tempfile.mkdtemp()))
>>> digest = store.put(b"hello")
>>> store.get(digest)
b'hello'
"""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from omop.errors import RTCohortError
from omop.platform import StoredFile, StoredFileOwner
from omop.private_files import write_private

__all__ = ["FileStore", "FileStoreError", "files_of_person", "release_person"]

_HEX_LEN = 64


class FileStoreError(RTCohortError, OSError):
    """A file is missing from the store or does not match its hash."""


class FileStore:
    """Files named by their SHA-256 under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        """Return where the file with this hash lives (it may not exist)."""
        if len(sha256) != _HEX_LEN or any(c not in "0123456789abcdef" for c in sha256):
            raise FileStoreError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data`` and return its SHA-256 hex digest.

        When the file is already stored its modification time is refreshed instead:
        the orphan collection (:mod:`omop.filestore_gc`) keeps young files, so a file an
        uncommitted import reuses is not removed under it.

        ``durable=False`` skips the fsync of each new file: a batch of puts is then
        made durable at once by :meth:`sync`, which the caller must call before any
        row refers to the files (one flush instead of one per file).
        """
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        try:
            os.utime(target)
        except FileNotFoundError:
            pass  # not stored (or removed by the collection this instant): write it
        else:
            return digest
        write_private(target, data, fsync=durable)
        return digest

    def sync(self) -> None:
        """Flush every file written with ``put(..., durable=False)`` to disk."""
        os.sync()

    def put_file(self, source: Path) -> str:
        """Store the bytes of a file and return their digest."""
        return self.put(Path(source).read_bytes())

    def get(self, sha256: str) -> bytes:
        """Return the stored bytes, verified against the hash."""
        target = self.path(sha256)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise FileStoreError(f"{sha256}: not in the file store") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise FileStoreError(f"{target}: content does not match its hash")
        return data

    def exists(self, sha256: str) -> bool:
        """Whether a file with this hash is stored."""
        return self.path(sha256).exists()

    def delete(self, sha256: str) -> bool:
        """Remove a file; return whether it existed."""
        target = self.path(sha256)
        existed = target.exists()
        target.unlink(missing_ok=True)
        return existed

    def register_many(
        self, session: Session, files: list[tuple[str, int | None]]
    ) -> None:
        """Record many stored files and owners in a few statements, idempotently.

        Parameters
        ----------
        files
            ``(sha256, person_id or None)`` pairs; duplicates are fine.
        """
        hashes = sorted({sha for sha, _ in files})
        known: set[str] = set()
        owned: set[tuple[str, int]] = set()
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            known.update(
                session.scalars(
                    select(StoredFile.sha256).where(StoredFile.sha256.in_(chunk))
                )
            )
            owned.update(
                (str(sha), int(pid))
                for sha, pid in session.execute(
                    select(StoredFileOwner.sha256, StoredFileOwner.person_id).where(
                        StoredFileOwner.sha256.in_(chunk)
                    )
                )
            )
        now = datetime.datetime.now(datetime.UTC)
        new_files = [
            StoredFile(
                sha256=sha, size_bytes=self.path(sha).stat().st_size, stored_at=now
            )
            for sha in hashes
            if sha not in known
        ]
        session.add_all(new_files)
        session.flush()
        new_owners = {
            (sha, pid)
            for sha, pid in files
            if pid is not None and (sha, pid) not in owned
        }
        session.add_all(
            StoredFileOwner(sha256=sha, person_id=pid)
            for sha, pid in sorted(new_owners)
        )
        session.flush()

    def register(self, session: Session, sha256: str, person_id: int | None) -> None:
        """Record a stored file (and its owner) in the database, idempotently."""
        if session.get(StoredFile, sha256) is None:
            size = self.path(sha256).stat().st_size
            session.add(
                StoredFile(
                    sha256=sha256,
                    size_bytes=size,
                    stored_at=datetime.datetime.now(datetime.UTC),
                )
            )
            session.flush()
        if (
            person_id is not None
            and session.get(StoredFileOwner, (sha256, person_id)) is None
        ):
            session.add(StoredFileOwner(sha256=sha256, person_id=person_id))
            session.flush()


def files_of_person(session: Session, person_id: int) -> list[str]:
    """Return the hashes of the files a person owns."""
    return list(
        session.scalars(
            select(StoredFileOwner.sha256).where(StoredFileOwner.person_id == person_id)
        )
    )


def release_person(session: Session, person_id: int) -> list[str]:
    """Drop a person's ownership; return the hashes no one owns any more.

    The caller deletes those files from the :class:`FileStore` after its transaction
    commits (a rolled-back erasure must not have removed files).
    """
    hashes = files_of_person(session, person_id)
    session.execute(
        delete(StoredFileOwner).where(StoredFileOwner.person_id == person_id)
    )
    orphans: list[str] = []
    for digest in hashes:
        still_owned = session.scalar(
            select(StoredFileOwner.sha256).where(StoredFileOwner.sha256 == digest)
        )
        if still_owned is None:
            session.execute(delete(StoredFile).where(StoredFile.sha256 == digest))
            orphans.append(digest)
    return orphans
