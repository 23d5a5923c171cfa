"""The files an import reads: found under the import roots, never through a way out.

An *import root* is a file or folder the operator names (``rtcohort import PATH``,
``--watch DIR``); it is taken as it is, a symbolic link included (the operator chose
it). Below a folder root, symbolic links are checked before anything is read:

- a link whose target lies outside the root (``passwd.dcm -> /etc/passwd``, a linked
  folder elsewhere) is **refused** with reason ``symlink-outside-root``: its target is
  not read, not copied to the quarantine, and the refusal is reported in the import
  summary;
- a link whose target does not exist is refused with reason ``symlink-broken``;
- a link to a file inside the root is followed: the file is read under its real path,
  once however many links point to it; a link to a folder inside the root is not
  walked a second time (the folder is walked as part of the root).

Files are read with ``O_NOFOLLOW`` (:func:`read_file`), so a file replaced by a link
after the walk is not followed either.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

__all__ = [
    "ImportFiles",
    "RefusalReason",
    "RefusedFile",
    "collect_files",
    "read_file",
    "scan_import_paths",
]

#: Names that are never DICOM: the inbox index, phantom truth, a DICOMDIR.
SKIP_NAMES = frozenset({"inbox-index.jsonl", "truth.json", "DICOMDIR"})
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class RefusalReason(StrEnum):
    """Why a path under an import root was not read."""

    SYMLINK_OUTSIDE_ROOT = "symlink-outside-root"
    SYMLINK_BROKEN = "symlink-broken"


@dataclass(frozen=True)
class RefusedFile:
    """A path that was not read, with the reason."""

    path: Path
    reason: RefusalReason


@dataclass
class ImportFiles:
    """What :func:`scan_import_paths` found: files to read and paths refused."""

    files: list[Path] = field(default_factory=list)
    refused: list[RefusedFile] = field(default_factory=list)


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIP_NAMES or name.endswith(".reason.json")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk(root: Path, found: ImportFiles, seen: set[str]) -> None:
    real_root = os.path.realpath(root)
    entries: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        entries += [Path(folder, d) for d in dirs if Path(folder, d).is_symlink()]
        entries += [Path(folder, f) for f in sorted(files)]
    for path in sorted(entries):
        if _skipped(path.name):
            continue
        if not path.is_symlink():
            real = os.path.realpath(path)
            if real not in seen and stat.S_ISREG(path.lstat().st_mode):
                seen.add(real)
                found.files.append(path)
            continue
        target = os.path.realpath(path)
        if not _inside(target, real_root):
            found.refused.append(RefusedFile(path, RefusalReason.SYMLINK_OUTSIDE_ROOT))
        elif not os.path.exists(target):
            found.refused.append(RefusedFile(path, RefusalReason.SYMLINK_BROKEN))
        elif os.path.isfile(target) and target not in seen:
            seen.add(target)
            found.files.append(Path(target))


def scan_import_paths(paths: Iterable[Path]) -> ImportFiles:
    """Return the candidate files under `paths` and the links refused (module notes).

    Hidden files, ``*.reason.json`` and known non-DICOM names are skipped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.dcm").write_bytes(b"x")
    >>> (root / "passwd.dcm").symlink_to("/etc/passwd")
    >>> (root / "b.dcm").symlink_to(root / "a.dcm")
    >>> found = scan_import_paths([root])
    >>> [p.name for p in found.files]
    ['a.dcm']
    >>> [(r.path.name, r.reason.value) for r in found.refused]
    [('passwd.dcm', 'symlink-outside-root')]
    """
    found = ImportFiles()
    seen: set[str] = set()
    for root in paths:
        if root.is_file():
            real = os.path.realpath(root)
            if real not in seen:
                seen.add(real)
                found.files.append(Path(real) if root.is_symlink() else root)
        elif root.is_dir():
            _walk(root, found, seen)
    return found


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Return the candidate files under `paths` (refused links left out)."""
    return scan_import_paths(paths).files


def read_file(path: str | os.PathLike[str]) -> bytes:
    """Return the bytes of a regular file without following a final symbolic link.

    Raises
    ------
    OSError
        If the file cannot be read; a symbolic link raises ``ELOOP``.
    """
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()
