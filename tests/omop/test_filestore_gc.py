"""Orphan files of a killed import: found and removed, committed files never touched.

An import subprocess is really killed (SIGKILL) while it writes the file store; then
``rtcohort db gc`` and the next ``rtcohort import`` remove what no row names, older
than the grace period, on both backends.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from omop.engine import make_engine
from omop.filestore import FileStore
from omop.filestore_gc import collect_garbage, hash_columns
from omop.ingest_tables import IngestObject, QuarantineItem
from omop.platform import StoredFile
from rtcohort.cli import app
from tests.etl.ingest_corpus import write_patient

runner = CliRunner()
CENTRE = "GC01"
HOURS_AGO = 2 * 3600


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def _store_files(store: FileStore) -> dict[str, Path]:
    return {
        p.name: p for p in store.root.rglob("*") if p.is_file() and len(p.name) == 64
    }


def _committed(url: str) -> set[str]:
    """Hashes the rows name, read through the models (independent of the gc scan)."""
    engine = make_engine(url)
    with Session(engine) as session:
        found = set(session.scalars(select(StoredFile.sha256)))
        found |= set(session.scalars(select(IngestObject.sha256)))
        found |= set(session.scalars(select(QuarantineItem.sha256)))
    engine.dispose()
    return found


def _age(paths: list[Path], seconds: int) -> None:
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def _kill_import_midway(src: Path, key: Path, store: FileStore, before: int) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtcohort.cli", "import", str(src),
         "--centre", CENTRE, "--key-file", str(key)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    try:
        while len(_store_files(store)) < before + 12:
            assert proc.poll() is None, "the import finished before it was killed"
            assert time.monotonic() < deadline, "the import wrote no files"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    return proc.returncode


@pytest.fixture
def data_env(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Path]:
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "correct horse battery")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    _ok(["db", "upgrade"])
    _ok(["centre", "add", CENTRE])
    _ok(["keys", "new", "--centre", CENTRE, "--out", str(tmp_path / "k.key")])
    return fresh_url, tmp_path


def _consent(patient: str, key: Path) -> None:
    _ok(["consent", "record", patient, "--centre", CENTRE, "--key-file", str(key),
         "--state", "consented", "--year-of-birth", "1950", "--sex", "F",
         "--date", "2025-01-10"])  # fmt: skip


def test_killed_import_leaves_orphans_that_gc_and_the_next_import_remove(
    data_env: tuple[str, Path],
) -> None:
    url, root = data_env
    key = root / "k.key"
    store = FileStore(root / "data" / "files")
    k = ["--centre", CENTRE, "--key-file", str(key)]
    first = root / "src1"
    write_patient(first, "GC-A-1", 71)
    _consent("GC-A-1", key)
    assert "datasets loaded 1" in _ok(["import", str(first), *k])
    committed_before = {h: p.read_bytes() for h, p in _store_files(store).items()}
    assert committed_before and set(committed_before) <= _committed(url)

    second = root / "src2"
    for n in range(4):
        write_patient(second, f"GC-B-{n}", 80 + n)
        _consent(f"GC-B-{n}", key)
    code = _kill_import_midway(second, key, store, len(committed_before))
    assert code == -signal.SIGKILL

    files = _store_files(store)
    committed = _committed(url)
    orphans = sorted(set(files) - committed)
    assert len(orphans) >= 12
    sizes = {h: files[h].stat().st_size for h in orphans}

    # young orphans may belong to a running import: the default grace keeps them
    assert "removed 0 orphan file(s), 0 bytes" in _ok(["db", "gc"])
    assert set(_store_files(store)) == set(files)

    # committed files made old are still never touched; half the orphans made old go
    aged = orphans[::2]
    _age([files[h] for h in committed & set(files)], HOURS_AGO)
    _age([files[h] for h in aged], HOURS_AGO)
    out = _ok(["db", "gc", "--dry-run"])
    assert f"would remove {len(aged)} orphan file(s)" in out
    out = _ok(["db", "gc"])
    assert (
        f"removed {len(aged)} orphan file(s), {sum(sizes[h] for h in aged):,} bytes"
        in out
    )
    left = _store_files(store)
    assert not set(aged) & set(left)
    assert set(left) == set(files) - set(aged)

    # the next import removes the rest (once old) and reports it
    rest = [h for h in orphans if h not in aged]
    _age([left[h] for h in rest], HOURS_AGO)
    out = _ok(["import", str(first), *k])
    assert (
        f"orphan files of an interrupted import removed: {len(rest)}"
        f" ({sum(sizes[h] for h in rest):,} bytes)" in out
    )
    left = _store_files(store)
    assert set(left) == committed & set(files)
    for digest, data in committed_before.items():
        assert left[digest].read_bytes() == data
    for digest, path in left.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert _committed(url) == committed


def test_a_reused_file_is_young_again_and_temporaries_go(
    session: Session, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "files")
    digest = store.put(b"orphan of a crashed import")
    path = store.path(digest)
    _age([path], HOURS_AGO)
    temp = path.parent / ".tmp-killed"
    temp.write_bytes(b"half")
    _age([temp], HOURS_AGO)
    assert store.put(b"orphan of a crashed import") == digest  # a new import reuses it
    report = collect_garbage(session, store)
    assert (report.files, report.temporaries, report.kept_young) == (0, 1, 1)
    assert path.exists() and not temp.exists()
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)
    report = collect_garbage(session, store, now=later)
    assert (report.files, report.bytes, report.hashes) == (
        1,
        len(b"orphan of a crashed import"),
        [digest],
    )
    assert not path.exists()


def test_hash_columns_come_from_the_live_database(session: Session) -> None:
    columns = set(hash_columns(session))
    assert {("stored_file", "sha256"), ("ingest_object", "sha256")} <= columns
    assert ("quarantine_item", "sha256") in columns


def test_gc_is_a_db_command_with_a_grace_option() -> None:
    result = runner.invoke(app, ["db", "gc", "--help"])
    assert result.exit_code == 0
    assert "--grace-minutes" in result.output


def test_gc_of_a_missing_store_finds_nothing(session: Session, tmp_path: Path) -> None:
    report = collect_garbage(session, FileStore(tmp_path / "none"))
    assert (report.files, report.bytes, report.temporaries) == (0, 0, 0)
