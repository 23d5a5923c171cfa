"""The one-line error messages of ``rtcohort`` (rtcohort/cli/errors.py), unit by unit."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from cohort.errors import PermissionDeniedError
from omop.errors import SchemaConflictError
from omop.filestore import FileStoreError
from rtcohort.cli.errors import BAD_INPUT, FAILURE, describe


def _raised(fn, *args):  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except Exception as exc:
        return exc
    raise AssertionError("nothing raised")


def _read_json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def test_platform_errors_keep_their_message() -> None:
    assert describe(PermissionDeniedError("may not write at C1")) == (
        "may not write at C1",
        BAD_INPUT,
    )
    assert describe(SchemaConflictError("not ours")) == ("not ours", FAILURE)
    assert describe(FileStoreError("disk"))[1] == FAILURE


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "answers.json"
    path.write_bytes(b'{"a": "\xe9"}')
    message, code = describe(_raised(_read_json, path))
    assert (message, code) == (
        f"{path}: not utf-8 text (byte 0xe9 at offset 7: invalid continuation byte)",
        BAD_INPUT,
    )
    path.write_text('{"a": ', encoding="utf-8")
    message, code = describe(_raised(_read_json, path))
    assert message == f"{path}: line 1 column 7: not valid JSON (Expecting value)"
    assert code == BAD_INPUT
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert describe(_raised(_read_json, path)) == (
        f"{path}: nested too deeply to be read",
        BAD_INPUT,
    )
    missing = tmp_path / "none.csv"
    assert describe(_raised(missing.read_text)) == (
        f"{missing}: No such file or directory",
        BAD_INPUT,
    )


def test_the_command_line_names_the_file_when_the_error_does_not(
    tmp_path: Path,
) -> None:
    given = tmp_path / "cohort.csv"
    given.write_text("x", encoding="utf-8")
    exc = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    message, _ = describe(exc, ["fit", "--cohort", str(given)])
    assert message.startswith(f"{given}: not utf-8 text")


@pytest.mark.parametrize(
    ("orig", "expect", "code"),
    [
        ("no such table: app_user", "run `rtcohort db upgrade` first", BAD_INPUT),
        ("no such column: person.x", "older than this rtcohort", BAD_INPUT),
        ("database is locked", "database: OperationalError: database is locked",
         FAILURE),
    ],
)  # fmt: skip
def test_database_errors(orig: str, expect: str, code: int) -> None:
    exc = OperationalError("SELECT 1", {}, sqlite3.OperationalError(orig))
    message, got = describe(exc)
    assert expect in message and got == code
    assert "\n" not in message


def test_a_bug_is_one_line_with_the_way_to_the_traceback() -> None:
    message, code = describe(KeyError("x"))
    assert message.startswith("internal error: KeyError: 'x'")
    assert "rtcohort --debug" in message and code == FAILURE
