"""Centre key files: create, load, fingerprint, refuse another centre's key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.deid.keys import CentreKey, load_key, new_key, normalise_centre, write_key
from etl.errors import KeyCentreMismatchError, KeyFileError
from rtcohort.cli import app


def test_roundtrip_and_file_format(tmp_path: Path) -> None:
    key = new_key("ams01")
    path = write_key(key, tmp_path / "k.key")
    body = json.loads(path.read_text())
    assert body["format"] == "rtcohort-centre-key"
    assert body["version"] == 2
    assert body["centre"] == "AMS01"
    assert body["date_shift_max_days"] == 182
    secret = base64.b64decode(body["secret_b64"])
    assert len(secret) == 32
    # fingerprint: first 8 bytes of HMAC-SHA-512/256(secret, label with the bound)
    expected = hmac.new(
        secret,
        b"rtcohort/fingerprint/v2/date-shift-max-days/182",
        hashlib.new("sha512_256").name,
    )
    assert body["fingerprint"] == expected.digest()[:8].hex()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key(path, "AMS01")
    assert loaded.secret == key.secret
    assert loaded.fingerprint == key.fingerprint
    assert loaded.date_shift_max_days == 182
    assert loaded.date_offset_range_days == (-182, -1)


def _legacy_file(path: Path, secret: bytes) -> Path:
    """A key file as rtcohort wrote them before the bound (version 1)."""
    fingerprint = hmac.new(
        secret, b"rtcohort/fingerprint/v1", hashlib.new("sha512_256").name
    ).digest()[:8]
    body = {
        "format": "rtcohort-centre-key",
        "version": 1,
        "centre": "AMS01",
        "created_utc": "2024-01-31T10:00:00Z",
        "secret_b64": base64.b64encode(secret).decode(),
        "fingerprint": fingerprint.hex(),
    }
    path.write_text(json.dumps(body, indent=2) + "\n")
    path.chmod(0o600)
    return path


def test_legacy_key_keeps_its_range_and_fingerprint_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from etl.deid.pseudonymise import date_offset_days

    secret = bytes(range(32))
    path = _legacy_file(tmp_path / "old.key", secret)
    with caplog.at_level("WARNING", logger="etl.deid.keys"):
        key = load_key(path, "AMS01")
    assert key.legacy_date_shift
    assert key.date_offset_range_days == (-3650, -365)
    assert key.fingerprint == json.loads(path.read_text())["fingerprint"]
    assert "legacy" in caplog.text and key.fingerprint in caplog.text
    # the offsets of data shifted before: -3650 + u64 mod 3286
    sub = hmac.new(secret, b"rtcohort/date-offset/v1", "sha512_256").digest()
    u64 = int.from_bytes(hmac.new(sub, b"P1", "sha512_256").digest()[:8], "big")
    assert date_offset_days(key, "P1") == -3650 + u64 % 3286
    # written back, a legacy key stays a version 1 file with the same fingerprint
    again = load_key(write_key(key, tmp_path / "copy.key"))
    assert json.loads((tmp_path / "copy.key").read_text())["version"] == 1
    assert again.fingerprint == key.fingerprint and again.legacy_date_shift


def test_bound_is_part_of_the_key(tmp_path: Path) -> None:
    key = new_key("AMS01", date_shift_max_days=90)
    assert key.date_offset_range_days == (-90, -1)
    path = write_key(key, tmp_path / "k.key")
    assert load_key(path).date_shift_max_days == 90
    assert CentreKey("AMS01", key.secret, date_shift_max_days=182).fingerprint != (
        key.fingerprint
    )
    body = json.loads(path.read_text())
    body["date_shift_max_days"] = 30  # edited: offsets would move under the same key
    path.write_text(json.dumps(body))
    with pytest.raises(KeyFileError, match="fingerprint"):
        load_key(path)
    for bad in (0, 3651, "182", None):
        body["date_shift_max_days"] = bad
        path.write_text(json.dumps(body))
        with pytest.raises(KeyFileError, match="date_shift_max_days"):
            load_key(path)
    with pytest.raises(KeyFileError, match="date_shift_max_days"):
        new_key("AMS01", date_shift_max_days=0)
    child = key.child("audit-copy/v1/1", "AMS01-A1")
    assert child.date_shift_max_days == 90


def test_two_new_keys_differ() -> None:
    assert new_key("A").secret != new_key("A").secret


def test_secret_never_in_repr() -> None:
    key = CentreKey("AMS01", b"\x01" * 32)
    assert "secret" not in repr(key)
    assert "\\x01" not in repr(key)


def test_never_overwrites(tmp_path: Path) -> None:
    path = write_key(new_key("A"), tmp_path / "k.key")
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="exists"):
        write_key(new_key("A"), path)
    assert path.read_bytes() == before


def test_refuses_another_centre(tmp_path: Path) -> None:
    path = write_key(new_key("AMS01"), tmp_path / "k.key")
    with pytest.raises(KeyCentreMismatchError, match="AMS01"):
        load_key(path, "RTM02")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("not json", "invalid JSON"),
        ('{"format": "other"}', "not an rtcohort"),
    ],
)
def test_bad_key_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "k.key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KeyFileError, match=message):
        load_key(path)


def test_damaged_secret_detected(tmp_path: Path) -> None:
    path = write_key(new_key("A"), tmp_path / "k.key")
    body = json.loads(path.read_text())
    body["secret_b64"] = base64.b64encode(bytes(32)).decode()
    path.write_text(json.dumps(body))
    with pytest.raises(KeyFileError, match="fingerprint"):
        load_key(path)


@pytest.mark.parametrize("code", ["", "a b", "TOO-LONG-CENTRE-CODE-X", "-AMS"])
def test_invalid_centre_codes(code: str) -> None:
    with pytest.raises(KeyFileError):
        normalise_centre(code)


def test_cli_keys_new_and_show(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "c.key"
    made = runner.invoke(app, ["keys", "new", "--centre", "AMS01", "--out", str(path)])
    assert made.exit_code == 0, made.output
    fingerprint = load_key(path).fingerprint
    shown = runner.invoke(app, ["keys", "show", str(path)])
    assert shown.exit_code == 0
    assert "AMS01" in shown.output
    assert fingerprint in shown.output
    assert "date_shift   -182..-1 days\n" in shown.output
    assert "warning" not in shown.output
    assert json.loads(path.read_text())["secret_b64"] not in shown.output
    again = runner.invoke(app, ["keys", "new", "--centre", "AMS01", "--out", str(path)])
    assert again.exit_code != 0
    missing = runner.invoke(app, ["keys", "show", str(tmp_path / "none.key")])
    assert missing.exit_code != 0
    assert "not found" in missing.output


def test_cli_keys_new_takes_the_consortium_bound_and_show_flags_legacy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("RTCOHORT_DATE_SHIFT_MAX_DAYS", "60")
    path = tmp_path / "c.key"
    made = runner.invoke(app, ["keys", "new", "--centre", "AMS01", "--out", str(path)])
    assert made.exit_code == 0, made.output
    assert load_key(path).date_offset_range_days == (-60, -1)
    assert (
        "date_shift   -60..-1 days"
        in runner.invoke(app, ["keys", "show", str(path)]).output
    )
    legacy = _legacy_file(tmp_path / "old.key", bytes(32))
    shown = runner.invoke(app, ["keys", "show", str(legacy)])
    assert shown.exit_code == 0
    assert "date_shift   -3650..-365 days (legacy)" in shown.output
    assert "warning: legacy key" in shown.output
