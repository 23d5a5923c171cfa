"""The two files of the audit trail that live outside the database.

* The **audit key** (``RTCOHORT_AUDIT_KEY_FILE``, default
  ``<data_dir>/keys/audit.key``): a 256-bit secret in a small JSON file (mode 0600),
  created by ``rtcohort db upgrade``.
  Two sub-keys are derived from it with distinct labels, one for the record MACs and one
  for the checkpoint lines, so neither can stand in for the other.
* The **checkpoint log** (``RTCOHORT_AUDIT_CHECKPOINTS``, default
  ``<data_dir>/audit-checkpoints.log``): one line per committed append, written with
  ``O_APPEND`` and ``fsync``; each line names the chain length and head MAC and carries
  its own MAC. Point it at append-only or write-once storage (``docs/cohort.md``).

Key file format (UTF-8 JSON)::

    {"format": "rtcohort-audit-key", "version": 1, "created_utc": "...",
     "secret_b64": "<32 random bytes, base64>", "fingerprint": "<16 hex digits>"}

Checkpoint line format (one line, ASCII)::

    rtcohort-audit-checkpoint v1 count=<n> head=<64 hex> at=<ISO UTC> mac=<64 hex>

where ``mac`` is HMAC-SHA-256 under the checkpoint sub-key of everything before
`` mac=``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cohort.errors import AuditKeyError, AuditKeyMissingError
from omop.private_files import make_private_dirs, open_private

__all__ = [
    "AuditFiles",
    "AuditKey",
    "Checkpoint",
    "append_checkpoint",
    "create_key",
    "load_key",
    "read_checkpoints",
]

_FORMAT = "rtcohort-audit-key"
_VERSION = 1
_SECRET_BYTES = 32
_LINE_PREFIX = "rtcohort-audit-checkpoint v1"
_LINE_RE = re.compile(
    r"^rtcohort-audit-checkpoint v1 count=(?P<count>[0-9]+) "
    r"head=(?P<head>[0-9a-f]{64}) at=(?P<at>\S+) mac=(?P<mac>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class AuditFiles:
    """Where the audit key and the checkpoint log of one database live."""

    key_file: Path
    checkpoints: Path


@dataclass(frozen=True, repr=False)
class AuditKey:
    """The audit secret; ``repr`` shows only its fingerprint."""

    secret: bytes

    def __repr__(self) -> str:
        return f"AuditKey(fingerprint={self.fingerprint!r})"

    def _derive(self, label: str) -> bytes:
        return hmac.digest(self.secret, f"rtcohort/audit/{label}".encode(), "sha256")

    @property
    def record_key(self) -> bytes:
        """Sub-key of the record MACs."""
        return self._derive("record/v1")

    @property
    def checkpoint_key(self) -> bytes:
        """Sub-key of the checkpoint-line MACs."""
        return self._derive("checkpoint/v1")

    @property
    def fingerprint(self) -> str:
        """16 hex digits identifying the key without revealing it."""
        return self._derive("fingerprint/v1")[:8].hex()


def _missing(path: Path) -> AuditKeyMissingError:
    return AuditKeyMissingError(f"audit key missing: {path}; run rtcohort db upgrade")


def create_key(path: Path) -> AuditKey:
    """Create a new audit key file at `path` (mode 0600); never overwrite one.

    Raises
    ------
    AuditKeyError
        If the file exists already or cannot be written.
    """
    key = AuditKey(secrets.token_bytes(_SECRET_BYTES))
    body = {
        "format": _FORMAT,
        "version": _VERSION,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "secret_b64": base64.b64encode(key.secret).decode("ascii"),
        "fingerprint": key.fingerprint,
    }
    try:
        make_private_dirs(path.parent)
        fd = open_private(path, os.O_WRONLY | os.O_EXCL)
    except FileExistsError as exc:
        raise AuditKeyError(f"{path}: an audit key exists already") from exc
    except OSError as exc:
        raise AuditKeyError(f"{path}: cannot create audit key: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(body, indent=2) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return key


def load_key(path: Path) -> AuditKey:
    """Load the audit key file.

    Raises
    ------
    AuditKeyMissingError
        If the file does not exist.
    AuditKeyError
        If it is not a valid audit key file.
    """
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _missing(path) from exc
    except OSError as exc:
        raise AuditKeyError(f"{path}: cannot read audit key: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise AuditKeyError(f"{path}: not an audit key (invalid JSON)") from exc
    if not isinstance(body, dict) or body.get("format") != _FORMAT:
        raise AuditKeyError(f"{path}: not an rtcohort audit key file")
    if body.get("version") != _VERSION:
        raise AuditKeyError(f"{path}: unsupported version {body.get('version')!r}")
    try:
        secret = base64.b64decode(str(body["secret_b64"]), validate=True)
    except (KeyError, binascii.Error) as exc:
        raise AuditKeyError(f"{path}: audit key lacks a valid secret") from exc
    if len(secret) != _SECRET_BYTES:
        raise AuditKeyError(f"{path}: secret must be {_SECRET_BYTES} bytes")
    key = AuditKey(secret)
    if body.get("fingerprint") != key.fingerprint:
        raise AuditKeyError(f"{path}: fingerprint does not match the secret (damaged)")
    return key


@dataclass(frozen=True)
class Checkpoint:
    """One line of the checkpoint log (``line`` is 1-based)."""

    line: int
    count: int
    head: str
    at: str


def _line_mac(key: AuditKey, body: str) -> str:
    return hmac.new(key.checkpoint_key, body.encode("ascii"), "sha256").hexdigest()


def checkpoint_line(key: AuditKey, count: int, head: str, at: datetime) -> str:
    """Return the checkpoint line (without newline) for a chain of `count` records."""
    body = f"{_LINE_PREFIX} count={count} head={head} at={at.isoformat()}"
    return f"{body} mac={_line_mac(key, body)}"


def append_checkpoint(path: Path, key: AuditKey, count: int, head: str) -> None:
    """Append one checkpoint line to `path` (``O_APPEND``, then ``fsync``).

    One ``write`` of a line shorter than ``PIPE_BUF`` is atomic with respect to other
    appenders, so lines of concurrent processes never interleave.
    """
    line = checkpoint_line(key, count, head, datetime.now(UTC)) + "\n"
    make_private_dirs(path.parent)
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoints(path: Path, key: AuditKey) -> tuple[list[Checkpoint], list[str]]:
    """Read the checkpoint log; return the valid lines and a problem per bad line.

    A missing file reads as no lines (the caller decides whether that is a problem).
    """
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return [], []
    good: list[Checkpoint] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        found = _LINE_RE.match(raw)
        if found is None:
            problems.append(f"{path} line {number}: not a checkpoint line (tampered)")
            continue
        body = raw[: found.start("mac") - len(" mac=")]
        if not hmac.compare_digest(_line_mac(key, body), found["mac"]):
            problems.append(f"{path} line {number}: checkpoint MAC wrong (tampered)")
            continue
        good.append(Checkpoint(number, int(found["count"]), found["head"], found["at"]))
    return good, problems
