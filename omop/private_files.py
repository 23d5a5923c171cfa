"""Files and folders closed to other users: created 0700 / 0600 whatever the umask.

The data directory holds the database, pseudonymised images, the quarantine (files
kept *as received*, with identifiers) and key material. Everything the platform
creates there is readable and writable by its owner only: folders are made ``0700``
and ``chmod``-ed after ``mkdir`` (``mkdir`` applies the umask), files are opened with
mode ``0600`` and ``fchmod``-ed once created. Existing files and folders are never
changed; :func:`find_loose` reports those that are open to others, and the command
line warns about them when it starts.

On systems other than POSIX the modes are not applied and nothing is reported.

Examples
--------
>>> import tempfile, pathlib, stat
>>> root = pathlib.Path(tempfile.mkdtemp()) / "data" / "files"
>>> _ = make_private_dirs(root)
>>> oct(stat.S_IMODE(root.stat().st_mode))
'0o700'
>>> write_private(root / "a.bin", b"x")
>>> oct(stat.S_IMODE((root / "a.bin").stat().st_mode))
'0o600'
>>> find_loose(root.parent)
[]
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "LoosePath",
    "find_loose",
    "make_private_dirs",
    "open_private",
    "random_key_file",
    "write_private",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_OTHERS = 0o077  # any permission bit of group or others
_POSIX = os.name == "posix"


def make_private_dirs(path: str | os.PathLike[str]) -> Path:
    """Create `path` and its missing parents, each created folder with mode 0700.

    Folders that exist already are left as they are (see :func:`find_loose`).

    Returns
    -------
    Path
        `path`.
    """
    target = Path(path)
    missing: list[Path] = []
    probe = target
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process: not ours to change
        if _POSIX:
            os.chmod(folder, PRIVATE_DIR_MODE)
    return target


def open_private(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open`` with ``O_CREAT``: a file created by this call gets mode 0600.

    Parameters
    ----------
    path
        The file.
    flags
        ``os.O_*`` flags (``O_CREAT`` is added). With ``O_EXCL`` an existing file
        raises :class:`FileExistsError`; without it an existing file is opened as it
        is, its mode unchanged.

    Returns
    -------
    int
        The file descriptor; the caller closes it.
    """
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        if flags & os.O_EXCL:
            raise
        return os.open(path, flags & ~os.O_CREAT)
    if _POSIX:
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
        except BaseException:
            os.close(fd)
            raise
    return fd


def random_key_file(path: str | os.PathLike[str], n_bytes: int) -> bytes:
    """Return the secret stored at ``path``, creating it once (``n_bytes``, 0600).

    Two processes creating it at once agree: the first creates it (``O_EXCL``), the
    other reads what the first wrote. The caller checks the length it expects.
    """
    target = Path(path)
    if not target.exists():
        make_private_dirs(target.parent)
        try:
            fd = open_private(target, os.O_WRONLY | os.O_EXCL)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(n_bytes))
    return target.read_bytes()


def write_private(
    target: str | os.PathLike[str], data: bytes, *, fsync: bool = True
) -> None:
    """Write `data` to `target` atomically (0600 temporary file, fsync, rename).

    Missing folders are created 0700. On any error the temporary file is removed
    and `target` is left as it was. ``fsync=False`` leaves the flush to the caller,
    who must make the files durable (``os.sync``) before anything refers to them.
    """
    final = Path(target)
    make_private_dirs(final.parent)
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.partial")
    fd = open_private(tmp, os.O_WRONLY | os.O_EXCL)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class LoosePath:
    """A file or folder that users other than its owner may read, write or enter."""

    path: Path
    mode: int

    def __str__(self) -> str:
        return f"{self.path} (mode {self.mode:04o})"


def _loose(path: Path) -> LoosePath | None:
    try:
        info = path.lstat()
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return None  # a link's own mode means nothing; its target is checked if listed
    mode = stat.S_IMODE(info.st_mode)
    return LoosePath(path, mode) if mode & _OTHERS else None


def find_loose(
    root: str | os.PathLike[str], extra: Iterable[str | os.PathLike[str]] = ()
) -> list[LoosePath]:
    """Return `root`, its direct entries and `extra` paths that are open to others.

    Only one level is read: a folder closed to others (0700) closes everything below
    it, so the start-up check stays fast on a file store of any size. Paths that do
    not exist are skipped.

    Examples
    --------
    >>> find_loose("/no/such/folder")
    []
    """
    if not _POSIX:
        return []
    top = Path(root)
    candidates = [top]
    if top.is_dir() and not top.is_symlink():
        with contextlib.suppress(OSError):
            candidates += sorted(top.iterdir())
    candidates += [Path(p) for p in extra]
    found: list[LoosePath] = []
    seen: set[Path] = set()
    for path in candidates:
        if path in seen:
            continue
        seen.add(path)
        loose = _loose(path)
        if loose is not None:
            found.append(loose)
    return found
