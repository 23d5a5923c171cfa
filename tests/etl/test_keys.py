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

from etl.errors import KeyCentreMismatchError, KeyFileError
from etl.keys import CentreKey, load_key, new_key, normalise_centre, write_key
from rtcohort.cli import app


def test_roundtrip_and_file_format(tmp_path: Path) -> None:
    key = new_key("ams01")
    path = write_key(key, tmp_path / "k.key")
    body = json.loads(path.read_text())
    assert body["format"] == "rtcohort-centre-key"
    assert body["version"] == 1
    assert body["centre"] == "AMS01"
    secret = base64.b64decode(body["secret_b64"])
    assert len(secret) == 32
    # fingerprint: first 8 bytes of HMAC-SHA-512/256(secret, "rtcohort/fingerprint/v1")
    expected = hmac.new(
        secret, b"rtcohort/fingerprint/v1", hashlib.new("sha512_256").name
    )
    assert body["fingerprint"] == expected.digest()[:8].hex()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key(path, "AMS01")
    assert loaded.secret == key.secret
    assert loaded.fingerprint == key.fingerprint


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
    assert json.loads(path.read_text())["secret_b64"] not in shown.output
    again = runner.invoke(app, ["keys", "new", "--centre", "AMS01", "--out", str(path)])
    assert again.exit_code != 0
    missing = runner.invoke(app, ["keys", "show", str(tmp_path / "none.key")])
    assert missing.exit_code != 0
    assert "not found" in missing.output
