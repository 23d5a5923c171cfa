"""A person's files outside the database's reach: receiver rejects and audit copies.

The folders are those registered by the commands that write them
(:mod:`etl.arrive.places`: the receiver's inbox and quarantine, the output of
``rtcohort audit-copies``), plus the ``<INBOX>-quarantine`` beside every inbox under
the data directory. A file is the person's when:

- receiver quarantine (``*.held``): its ``.reason.json`` names the person's keyed
  pseudonym (written when the receiver had the centre key), or, with the centre key
  at erasure, the PatientID of the held bytes has the person's pseudonym;
- audit copy: the copy's owner manifest names the person's owner tag
  (:mod:`etl.deid.audit_owners`, computed with the centre key).

What cannot be linked to anyone is kept and reported, never skipped silently: a
rejected file with no readable PatientID (or no pseudonym recorded and no centre key
given), an audit copy without manifest, audit copies when no centre key is given.
Files are found before commit (their hashes go into the erasure journal) and deleted
by hash after commit (:func:`delete_outside`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from etl.arrive.inbox import INDEX_NAME
from etl.arrive.places import PlaceKind, registered_places
from etl.deid import audit_owners
from etl.deid.audit_copies import copy_key
from etl.deid.identity import raw_pseudonym
from etl.deid.keys import CentreKey

__all__ = ["OutsideFiles", "delete_outside", "find_outside", "outside_inbox_roots"]

_HELD = "*.held"
_NOTE_SUFFIX = ".reason.json"
_STORE_DIR = "files"  # the content-addressed store: no inbox in it


@dataclass
class OutsideFiles:
    """The person's files found outside the database (hashes) and what was kept."""

    hashes: set[str] = field(default_factory=set)
    unlinkable: list[str] = field(default_factory=list)

    def keep(self, path: Path, reason: str) -> None:
        """Report a file (or folder) that cannot be linked to a person."""
        self.unlinkable.append(f"unlinkable, kept: {path}, {reason}")


def _inbox_roots_under(data_dir: Path) -> Iterator[Path]:
    for folder, subdirs, files in os.walk(data_dir):
        if Path(folder) == Path(data_dir):
            subdirs[:] = [d for d in subdirs if d != _STORE_DIR]
        if INDEX_NAME in files:
            yield Path(folder)


def _folders(data_dir: Path, kind: PlaceKind) -> list[Path]:
    """Return the folders of a kind (quarantines: also those beside inboxes)."""
    found = [p.path for p in registered_places(data_dir) if p.kind is kind]
    if kind is PlaceKind.RECEIVER_QUARANTINE:
        roots = [*_inbox_roots_under(data_dir), *outside_inbox_roots(data_dir)]
        found += [r.with_name(r.name + "-quarantine") for r in roots]
    unique: dict[Path, None] = {}
    for folder in found:
        if folder.is_dir():
            unique.setdefault(folder.resolve(), None)
    return list(unique)


def outside_inbox_roots(data_dir: Path) -> list[Path]:
    """Return the registered inbox folders (the receiver's ``--inbox``) that exist."""
    return [
        p.path
        for p in registered_places(data_dir)
        if p.kind is PlaceKind.INBOX and p.path.is_dir()
    ]


def _note(held: Path) -> dict[str, object]:
    try:
        note = json.loads(held.with_suffix(_NOTE_SUFFIX).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def _rejects(
    folder: Path, pseudonym: str, key: CentreKey | None, found: OutsideFiles
) -> None:
    for held in sorted(folder.glob(_HELD)):
        named = _note(held).get("pseudonym")
        if isinstance(named, str) and named:
            owner: str | None = named
        elif key is None:
            found.keep(held, "no pseudonym recorded and no centre key given")
            continue
        else:
            owner = raw_pseudonym(held.read_bytes(), key)
            if owner is None:
                found.keep(held, "no readable PatientID")
                continue
        if owner == pseudonym:
            found.hashes.add(hashlib.sha256(held.read_bytes()).hexdigest())


def _copies(
    root: Path, pseudonym: str, key: CentreKey | None, found: OutsideFiles
) -> None:
    for copy_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        index = audit_owners.copy_index(copy_dir)
        if index is None:
            continue
        entries = audit_owners.owners(copy_dir)
        if entries is None:
            found.keep(copy_dir, "audit copy without owner manifest")
            continue
        if key is None:
            found.keep(copy_dir, "audit copy: owners need the centre key (--key-file)")
            continue
        tag = audit_owners.owner_tag(copy_key(key, index), pseudonym)
        for entry in entries:
            if entry.get("owner") is None:
                found.keep(copy_dir / str(entry["file"]), "no readable PatientID")
            elif entry["owner"] == tag and entry.get("sha256"):
                found.hashes.add(str(entry["sha256"]))


def find_outside(
    data_dir: Path, pseudonym: str, key: CentreKey | None = None
) -> OutsideFiles:
    """Find the person's receiver rejects and audit-copy files (read only).

    Parameters
    ----------
    data_dir
        The data directory (holds the registry of folders).
    pseudonym
        The person's centre pseudonym.
    key
        The centre key, when the operator gave it: needed for audit copies and for
        rejects whose note names no pseudonym.
    """
    found = OutsideFiles()
    for folder in _folders(data_dir, PlaceKind.RECEIVER_QUARANTINE):
        _rejects(folder, pseudonym, key, found)
    for root in _folders(data_dir, PlaceKind.AUDIT_COPIES):
        _copies(root, pseudonym, key, found)
    return found


def delete_outside(data_dir: Path, hashes: Iterable[str]) -> int:
    """Delete the receiver rejects and audit-copy files with these hashes.

    Returns
    -------
    int
        How many files were deleted (a reject's ``.reason.json`` not counted).
    """
    wanted = set(hashes)
    if not wanted:
        return 0
    prefixes = {h[:16] for h in wanted}
    deleted = 0
    for folder in _folders(data_dir, PlaceKind.RECEIVER_QUARANTINE):
        for held in folder.glob(_HELD):
            if held.stem.rpartition("-")[2] not in prefixes:
                continue
            if hashlib.sha256(held.read_bytes()).hexdigest() in wanted:
                held.unlink()
                held.with_suffix(_NOTE_SUFFIX).unlink(missing_ok=True)
                deleted += 1
    for root in _folders(data_dir, PlaceKind.AUDIT_COPIES):
        for copy_dir in root.iterdir():
            if copy_dir.is_dir() and audit_owners.copy_index(copy_dir) is not None:
                deleted += audit_owners.forget(copy_dir, wanted)
    return deleted
