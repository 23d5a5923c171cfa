"""Who each audit-copy file belongs to, in a form only the centre key can read.

``rtcohort audit-copies`` writes, in every ``copy_<n>`` folder, the manifest
``.rtcohort-owners.jsonl``: one JSON line per written file, ``{"file", "sha256",
"owner"}``, where ``owner`` is a tag of the patient's centre pseudonym under a
sub-key of copy ``n``'s key (HMAC-SHA-512/256, ``erasure-owner/v1``, 128 bits in
hex) or null when the source named no readable PatientID. Without the centre key the
tags link neither a copy to the platform's pseudonyms nor two copies to each other
(each copy has its own sub-key); with it, erasure computes the tag of the person
being erased and deletes the files it names (:func:`forget`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from etl.deid.keys import CentreKey, hmac_512_256
from omop.private_files import open_private, write_private

__all__ = ["OWNERS_NAME", "copy_index", "forget", "owner_tag", "owners", "record"]

OWNERS_NAME = ".rtcohort-owners.jsonl"
_COPY_DIR = re.compile(r"copy_([0-9]{1,2})")


def owner_tag(copy_key: CentreKey, centre_pseudonym: str) -> str:
    """Return the owner tag of a patient in the copy made with ``copy_key``."""
    digest = hmac_512_256(
        copy_key.derive("erasure-owner/v1"), centre_pseudonym.encode()
    )
    return digest[:16].hex()


def copy_index(folder: Path) -> int | None:
    """Return ``n`` of a ``copy_<n>`` folder, or None for another name."""
    match = _COPY_DIR.fullmatch(folder.name)
    return int(match.group(1)) if match else None


def record(copy_dir: Path, relative: str, data: bytes, owner: str | None) -> None:
    """Append the manifest line of a file written into ``copy_dir``."""
    line = {
        "file": relative,
        "sha256": hashlib.sha256(data).hexdigest(),
        "owner": owner,
    }
    fd = open_private(copy_dir / OWNERS_NAME, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


def owners(copy_dir: Path) -> list[dict[str, str | None]] | None:
    """Return the manifest lines of a copy folder (the last line per file wins).

    None when the folder has no manifest (written before manifests existed).
    """
    manifest = copy_dir / OWNERS_NAME
    if not manifest.is_file():
        return None
    latest: dict[str, dict[str, str | None]] = {}
    for line in manifest.read_text("utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("file"):
            latest[str(entry["file"])] = entry
    return list(latest.values())


def forget(copy_dir: Path, hashes: set[str]) -> int:
    """Delete the copy's files with these hashes and their manifest lines.

    Returns
    -------
    int
        How many files were deleted.
    """
    entries = owners(copy_dir)
    if not entries:
        return 0
    kept: list[str] = []
    deleted = 0
    root = copy_dir.resolve()
    for entry in entries:
        target = copy_dir / str(entry["file"])
        if entry.get("sha256") in hashes and root in target.resolve().parents:
            if target.is_file():
                target.unlink()
                deleted += 1
            continue
        kept.append(json.dumps(entry))
    write_private(copy_dir / OWNERS_NAME, "".join(f"{k}\n" for k in kept).encode())
    return deleted
