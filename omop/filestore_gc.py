"""Remove orphan files from the content store: files no committed row names.

An import writes its files to the :class:`~omop.filestore.FileStore` before the
transaction that records them commits; an import killed in between (``kill -9``, power
cut) leaves files that no row names. A file is *committed* when a row of any table of
the live database names its hash in a column called ``sha256`` or ending in
``_sha256`` (the tables are read from the database itself, not from the models this
process happens to have imported, so no table is missed).

A file being written by a concurrent import that has not committed yet is not a row
either: only files whose modification time is older than a grace period (default
:data:`DEFAULT_GRACE`) are removed. :meth:`FileStore.put` refreshes the time of a file
it finds already stored, so a file an import reuses is young again; the removal renames
a file aside first and puts it back if it became young meanwhile. The grace period
must exceed the time between an import writing a file and committing its row (one
dataset's load; the prepare stage of a large import can take longer: raise it).

Examples
--------
>>> import datetime
>>> DEFAULT_GRACE == datetime.timedelta(hours=1)
True
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import column, inspect, select, table
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnClause

from omop.filestore import FileStore

__all__ = [
    "DEFAULT_GRACE",
    "GcReport",
    "collect_garbage",
    "hash_columns",
    "referenced_hashes",
    "unreferenced_hashes",
]

_log = logging.getLogger(__name__)

#: Files younger than this are never removed (a concurrent import may own them).
DEFAULT_GRACE = datetime.timedelta(hours=1)
_HASH_COLUMN = "sha256"
_HEX = frozenset("0123456789abcdef")
_TEMP_PREFIX = ".tmp-"
_ASIDE_PREFIX = ".gc-"
_HEX_LEN = 64
_CHUNK = 500


@dataclass
class GcReport:
    """What one collection removed (or, with ``dry_run``, would remove).

    Attributes
    ----------
    files
        Orphan files removed (named by a hash no row names).
    bytes
        Their total size.
    temporaries
        Half-written temporary files removed (an import killed inside ``put``).
    kept_young
        Files kept, without looking them up, because they are younger than the grace
        period (a concurrent import may be about to commit them).
    hashes
        The hashes of the removed orphan files.
    """

    files: int = 0
    bytes: int = 0
    temporaries: int = 0
    kept_young: int = 0
    hashes: list[str] = field(default_factory=list)


def hash_columns(session: Session) -> list[tuple[str, str]]:
    """Return ``(table, column)`` of every column of the live database naming a hash.

    A column is named ``sha256`` or ends in ``_sha256``. Read from the database
    catalogue, so tables of every package count, imported or not.
    """
    found: list[tuple[str, str]] = []
    columns = inspect(session.connection()).get_multi_columns()
    for (_schema, name), cols in sorted(columns.items(), key=lambda kv: kv[0][1]):
        for col in cols:
            col_name = str(col["name"])
            if col_name == _HASH_COLUMN or col_name.endswith("_" + _HASH_COLUMN):
                found.append((name, col_name))
    return found


def referenced_hashes(session: Session, hashes: Iterable[str]) -> set[str]:
    """Return the hashes among ``hashes`` that some row of some table names."""
    wanted = sorted(set(hashes))
    named: set[str] = set()
    if not wanted:
        return named
    for table_name, col_name in hash_columns(session):
        col: ColumnClause[str] = column(col_name)
        source = table(table_name, col)
        left = [h for h in wanted if h not in named]
        for start in range(0, len(left), _CHUNK):
            chunk = left[start : start + _CHUNK]
            named.update(
                str(v)
                for v in session.scalars(
                    select(col).select_from(source).where(col.in_(chunk))
                )
            )
    return named


def unreferenced_hashes(session: Session, hashes: Iterable[str]) -> set[str]:
    """Return the hashes among ``hashes`` that no row of any table names."""
    wanted = set(hashes)
    return wanted - referenced_hashes(session, wanted)


def _stored(store: FileStore) -> Iterator[tuple[Path, str | None]]:
    """Yield ``(path, hash)`` of stored files and ``(path, None)`` of temporaries.

    A file a crashed collection left renamed aside is put back first.
    """
    root = store.root
    if not root.is_dir():
        return
    for folder, _dirs, files in os.walk(root):
        for found in sorted(files):
            path, name = Path(folder) / found, found
            if found.startswith(_ASIDE_PREFIX):
                name = found.removeprefix(_ASIDE_PREFIX)
                original = path.with_name(name)
                if original.exists():
                    path.unlink(missing_ok=True)
                    continue
                os.replace(path, original)
                path = original
            if name.startswith(_TEMP_PREFIX):
                yield path, None
            elif (
                len(name) == _HEX_LEN and set(name) <= _HEX and path == store.path(name)
            ):
                yield path, name


def _age(path: Path, now: float) -> datetime.timedelta | None:
    try:
        return datetime.timedelta(seconds=now - path.stat().st_mtime)
    except FileNotFoundError:
        return None


def _remove_if_old(path: Path, grace: datetime.timedelta, now: float) -> int | None:
    """Remove an old file; return its size, or ``None`` if young or gone.

    The file is renamed aside first: a concurrent ``put`` that refreshed its time
    before the rename makes it young (it is put back); one after the rename finds it
    missing and writes it again.
    """
    aside = path.with_name(_ASIDE_PREFIX + path.name)
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return None
    age = _age(aside, now)
    if age is None or age < grace:
        os.replace(aside, path)
        return None
    size = aside.stat().st_size
    aside.unlink()
    return size


def collect_garbage(
    session: Session,
    store: FileStore,
    *,
    grace: datetime.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    now: datetime.datetime | None = None,
) -> GcReport:
    """Remove the store's files that no row names and that are older than ``grace``.

    Parameters
    ----------
    session
        Read only: which hashes committed rows name (uncommitted rows of other
        transactions are invisible, hence the grace period).
    store
        The content store.
    grace
        Files modified more recently than this are kept.
    dry_run
        Count what would be removed, remove nothing.
    now
        The current time (tests).

    Returns
    -------
    GcReport
        Counts and bytes removed; committed files are never touched.
    """
    if grace < datetime.timedelta(0):
        raise ValueError(f"grace period {grace} is negative")
    clock = (now or datetime.datetime.now(datetime.UTC)).timestamp()
    report = GcReport()
    old: dict[str, Path] = {}
    for path, digest in _stored(store):
        age = _age(path, clock)
        if age is None:
            continue
        if digest is None:
            if age >= grace:
                if not dry_run:
                    path.unlink(missing_ok=True)
                report.temporaries += 1
            continue
        if age < grace:
            report.kept_young += 1
            continue
        old[digest] = path
    for digest in sorted(unreferenced_hashes(session, old)):
        path = old[digest]
        if dry_run:
            size: int | None = path.stat().st_size if path.exists() else None
        else:
            size = _remove_if_old(path, grace, clock)
        if size is None:  # refreshed by a concurrent import meanwhile
            report.kept_young += 1
            continue
        report.files += 1
        report.bytes += size
        report.hashes.append(digest)
    if report.files or report.temporaries:
        _log.info(
            "file store: %s %d orphan file(s) (%d bytes) and %d temporary file(s)",
            "would remove" if dry_run else "removed",
            report.files,
            report.bytes,
            report.temporaries,
        )
    return report
