"""The data directory is closed to others; imports never follow a link out of the root.

Runs the real commands (`rtcohort db upgrade`, `consent record`, `import`) on the
embedded SQLite default inside the data directory, under umask 000 so that any mode
left to the umask would show as readable or writable by others.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcohort.cli import app
from tests.etl.ingest_corpus import write_patient

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")

runner = CliRunner()


def _ok(args: list[str], code: int = 0) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, (args, result.output)
    return result.output


def _open_to_others(root: Path) -> list[str]:
    """Every file or folder under `root` (itself included) with a group/other bit."""
    found = []
    for folder, dirs, files in os.walk(root):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            mode = os.lstat(name).st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                found.append(f"{name} {stat.S_IMODE(mode):04o}")
    return found


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory with the SQLite default, migrated; umask 000 meanwhile."""
    monkeypatch.delenv("RTCOHORT_DATABASE_URL", raising=False)
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "correct horse battery")
    previous = os.umask(0)
    try:
        _ok(["db", "upgrade"])
        _ok(["centre", "add", "PRV01"])
        _ok(["keys", "new", "--centre", "PRV01", "--out", str(tmp_path / "k.key")])
        yield tmp_path / "data"
    finally:
        os.umask(previous)


def _consent(key: Path, patient: str) -> None:
    _ok(["consent", "record", patient, "--centre", "PRV01", "--key-file", str(key),
         "--state", "consented", "--year-of-birth", "1950", "--sex", "F"])  # fmt: skip


def test_data_directory_closed_to_others_after_upgrade_and_import(data: Path) -> None:
    key = data.parent / "k.key"
    incoming = data.parent / "in"
    write_patient(incoming / "a", "PRV-A", 501)
    write_patient(incoming / "b", "PRV-B", 502)  # no consent: held in the store
    (incoming / "junk.dcm").write_bytes(b"PatientName=Doe^John")  # held as received
    _consent(key, "PRV-A")
    out = _ok(["import", str(incoming), "--centre", "PRV01", "--key-file", str(key)])
    assert "datasets loaded 1" in out and "quarantined not-dicom: 1" in out

    # what the import made: database, file store and raw quarantine
    assert (data / "rtcohort.sqlite").is_file()
    assert any((data / "files").rglob("*"))
    assert len(list((data / "quarantine").glob("*.held"))) == 1
    assert _open_to_others(data) == []
    # The WAL and shared-memory files exist while a connection is open (the last
    # one to close removes them); SQLite gives them the database file's mode.
    reader = sqlite3.connect(data / "rtcohort.sqlite")
    try:
        reader.execute("select count(*) from person").fetchone()
        assert (data / "rtcohort.sqlite-wal").exists()
        assert _open_to_others(data) == []
    finally:
        reader.close()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "warning" not in _ok(["db", "info"])


def test_start_warns_when_the_data_directory_is_open(data: Path) -> None:
    (data / "rtcohort.sqlite").chmod(0o644)
    data.chmod(0o755)
    result = runner.invoke(app, ["db", "info"])
    assert result.exit_code == 0
    warning = [line for line in result.output.splitlines() if "warning" in line]
    assert len(warning) == 1
    assert "2 path(s)" in warning[0] and "rtcohort.sqlite (mode 0644)" in warning[0]


def test_symlink_out_of_the_import_root_is_refused(data: Path) -> None:
    key = data.parent / "k.key"
    outside = data.parent / "outside"
    write_patient(outside / "c", "PRV-C", 503)
    secret = data.parent / "passwd"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    incoming = data.parent / "in"
    write_patient(incoming / "d", "PRV-D", 504)
    _consent(key, "PRV-D")
    (incoming / "passwd.dcm").symlink_to(secret)
    (incoming / "elsewhere").symlink_to(outside / "c", target_is_directory=True)
    (incoming / "dangling.dcm").symlink_to(incoming / "gone.dcm")
    inside = sorted((incoming / "d").glob("*.dcm"))[0]
    (incoming / "again.dcm").symlink_to(inside)  # inside the root: read once

    out = _ok(
        ["import", str(incoming), "--centre", "PRV01", "--key-file", str(key),
         "--strict"],
        1,
    )  # fmt: skip
    n_files = len(list((incoming / "d").glob("*.dcm")))
    assert f"files {n_files}, quarantined 0" in out
    assert "datasets loaded 1" in out
    assert "refused symlink-outside-root: 2 (not read)" in out
    assert "refused symlink-broken: 1 (not read)" in out
    assert str(incoming / "passwd.dcm") in out and str(incoming / "elsewhere") in out
    # nothing of the link targets reached the quarantine or the database
    assert not (data / "quarantine").exists() or not any(
        (data / "quarantine").iterdir()
    )
    assert json.loads(_ok(["quarantine", "list", "--json"])) == []
    report = _ok(["report", "structures"]).strip().splitlines()
    assert len(report) == 2  # header and the one patient inside the root
