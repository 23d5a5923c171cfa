"""Folders outside the data directory that hold a person's files, so erasure finds them.

The receiver's inbox and its quarantine (``<INBOX>-quarantine`` or ``--quarantine``),
and the output folders of ``rtcohort audit-copies``, may live anywhere. The commands
that write them register the folder in ``<data_dir>/file-places.jsonl`` (one JSON line
per folder: ``{"kind", "path"}``; paths only, no identifier), and
:mod:`cohort.erasure_outside` looks there for the files of a person being erased.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from omop.private_files import make_private_dirs, open_private

__all__ = ["PLACES_NAME", "Place", "PlaceKind", "register_place", "registered_places"]

#: The registry file in the data directory.
PLACES_NAME = "file-places.jsonl"


class PlaceKind(StrEnum):
    """What a registered folder holds."""

    INBOX = "inbox"
    RECEIVER_QUARANTINE = "receiver-quarantine"
    AUDIT_COPIES = "audit-copies"


@dataclass(frozen=True)
class Place:
    """A registered folder."""

    kind: PlaceKind
    path: Path


def registered_places(data_dir: str | os.PathLike[str]) -> list[Place]:
    """Return the registered folders (each once, in registration order).

    Raises
    ------
    ValueError
        Naming the registry file and line, for a line that is not a place.
    """
    registry = Path(data_dir) / PLACES_NAME
    if not registry.is_file():
        return []
    found: dict[tuple[str, str], Place] = {}
    for number, line in enumerate(registry.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            place = Place(PlaceKind(record["kind"]), Path(record["path"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{registry}, line {number}: not a place ({exc})") from exc
        found.setdefault((place.kind.value, str(place.path)), place)
    return list(found.values())


def register_place(
    data_dir: str | os.PathLike[str],
    kind: PlaceKind | str,
    path: str | os.PathLike[str],
) -> Place:
    """Register a folder (absolute path) once; return it."""
    place = Place(PlaceKind(kind), Path(path).resolve())
    if place in registered_places(data_dir):
        return place
    folder = make_private_dirs(Path(data_dir))
    line = json.dumps({"kind": place.kind.value, "path": str(place.path)})
    fd = open_private(folder / PLACES_NAME, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return place
