"""Every writer of private data creates 0700 folders and 0600 files, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from omop.private_files import find_loose, make_private_dirs, write_private

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(autouse=True)
def _open_umask() -> Iterator[None]:
    previous = os.umask(0)  # what the umask leaves would be 0777 / 0666
    yield
    os.umask(previous)


def test_dirs_and_files_are_private_and_existing_ones_untouched(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    made = make_private_dirs(shared / "a" / "b")
    assert [_mode(p) for p in (shared / "a", made)] == [0o700, 0o700]
    assert _mode(shared) == 0o755  # existed: left as it was
    write_private(made / "f.bin", b"data")
    assert _mode(made / "f.bin") == 0o600
    assert (made / "f.bin").read_bytes() == b"data"
    assert [p.name for p in made.iterdir()] == ["f.bin"]  # no temporary left
    assert [str(p) for p in find_loose(shared)] == [f"{shared} (mode 0755)"]
    assert find_loose(shared / "a", extra=[tmp_path / "missing"]) == []


def test_find_loose_reads_one_level_and_extra_paths(tmp_path: Path) -> None:
    root = make_private_dirs(tmp_path / "data")
    (root / "open.txt").write_bytes(b"x")
    deep = make_private_dirs(root / "files" / "ab")
    (deep / "open-but-closed-by-its-folder").write_bytes(b"x")
    db = tmp_path / "elsewhere.sqlite"
    db.write_bytes(b"")
    loose = find_loose(root, extra=[db])
    assert [(p.path.name, p.mode) for p in loose] == [
        ("open.txt", 0o666),
        ("elsewhere.sqlite", 0o666),
    ]


def test_etl_writers_are_private(tmp_path: Path) -> None:
    from etl.arrive.inbox import INDEX_NAME, Inbox
    from etl.deid.keys import new_key, write_key
    from etl.deid.pseudonymise import write_atomic
    from etl.ingest.quarantine import stash_raw

    inbox = Inbox(tmp_path / "inbox")
    stored = inbox.store(b"object", "1.2.3", "1.2.3.4")
    held = inbox.quarantine(b"rejected", "not DICOM")
    raw = stash_raw(tmp_path / "data" / "quarantine", b"as received")
    write_atomic(tmp_path / "deid-out" / "x" / "y.dcm", b"pseudonymised")
    key = write_key(new_key("AMS01"), tmp_path / "k.key")
    files = [stored.path, inbox.root / INDEX_NAME, held, raw, key]
    files += [held.with_suffix(".reason.json"), tmp_path / "deid-out/x/y.dcm"]
    dirs = [inbox.root, stored.path.parent, inbox.quarantine_dir, raw.parent]
    dirs += [tmp_path / "data", tmp_path / "deid-out", tmp_path / "deid-out/x"]
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert {str(p): _mode(p) for p in dirs} == {str(p): 0o700 for p in dirs}


def test_store_signing_key_and_sqlite_files_are_private(tmp_path: Path) -> None:
    from sqlalchemy import text

    from cohort.invitations import load_signing_key
    from omop.engine import make_engine
    from omop.filestore import FileStore

    store = FileStore(tmp_path / "data" / "files")
    path = store.path(store.put(b"pseudonymised bytes"))
    load_signing_key(tmp_path / "data" / "keys" / "signing.key")
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'x.sqlite'}")
    with engine.begin() as connection:
        connection.execute(text("create table t (x integer)"))
        connection.execute(text("insert into t values (1)"))
        sqlite_files = sorted((tmp_path / "db").iterdir())
        assert [p.name for p in sqlite_files] == [
            "x.sqlite",
            "x.sqlite-shm",
            "x.sqlite-wal",
        ]
        assert {_mode(p) for p in sqlite_files} == {0o600}
    engine.dispose()
    assert _mode(path) == 0o600
    assert {_mode(p) for p in [path.parent, path.parent.parent, store.root]} == {0o700}
    assert _mode(tmp_path / "data" / "keys" / "signing.key") == 0o600
    assert find_loose(tmp_path / "data") == []
    assert find_loose(tmp_path / "db") == []
