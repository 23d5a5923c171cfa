"""`rtcohort db` commands as a user runs them (separate processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtcohort.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_upgrade_then_check_reports_all_tables_conform(fresh_url: str) -> None:
    env = {"RTCOHORT_DATABASE_URL": fresh_url}
    first = run(["db", "upgrade"], env)
    assert first.returncode == 0, first.stderr
    assert "newest schema" in first.stdout
    second = run(["db", "upgrade"], env)
    assert "seed added 0 concepts" in second.stdout.replace("\n", " ")
    check = run(["db", "check"], env)
    assert check.returncode == 0, check.stdout
    assert "41/41 tables conform" in check.stdout
    info = run(["db", "info"], env)
    assert "schema revision:" in info.stdout
    assert "TG263" in info.stdout


def test_check_on_an_empty_database_fails(tmp_path: Path) -> None:
    env = {"RTCOHORT_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite'}"}
    result = run(["db", "check"], env)
    assert result.returncode == 1
    assert "0/41 tables conform" in result.stdout
    assert "table missing" in result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot connect to"),
        ("mysql://someone@localhost/db", "unsupported database backend"),
        ("::not a url::", "cannot parse database URL"),
    ],
)
def test_bad_database_url_is_one_line_and_exit_2(url: str, message: str) -> None:
    result = run(["db", "info"], {"RTCOHORT_DATABASE_URL": url})
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_foreign_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    result = run(["db", "upgrade"], {"RTCOHORT_DATABASE_URL": f"sqlite:///{db}"})
    assert result.returncode == 2
    assert "did not create" in result.stderr
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"invoices"}


def test_athena_error_names_file_and_line(tmp_path: Path) -> None:
    env = {"RTCOHORT_DATABASE_URL": f"sqlite:///{tmp_path / 'a.sqlite'}"}
    assert run(["db", "upgrade"], env).returncode == 0
    folder = tmp_path / "athena"
    folder.mkdir()
    (folder / "CONCEPT.csv").write_text(
        "concept_id\tconcept_name\n12\n", encoding="utf-8"
    )
    result = run(["vocab", "load-athena", str(folder)], env)
    assert result.returncode == 2
    assert "CONCEPT.csv line" in result.stderr
    assert "nothing was loaded" in result.stderr
