"""Centre pseudonymisation keys: create, store, load, fingerprint and derive sub-keys.

A centre key is a 256-bit secret held in a small JSON file at the centre, never in the
database. Every keyed value of the platform (pseudonyms, date offsets, remapped UIDs,
audit-copy keys) is an HMAC-SHA-512/256 under a *sub-key* derived from the secret with
a distinct label, so that no two uses can collide. Losing the key file ends linkage: the
same patient can no longer be given the same pseudonym (``docs/pseudonymisation.md``).

Key file format (UTF-8 JSON, mode 0600)::

    {
      "format": "rtcohort-centre-key",
      "version": 2,
      "centre": "AMS01",
      "created_utc": "2025-01-31T10:00:00Z",
      "date_shift_max_days": 182,
      "secret_b64": "<32 random bytes, base64>",
      "fingerprint": "<16 hex digits>"
    }

**Date shifts.** A key carries the range of its patients' date offsets:
``date_shift_max_days`` *n* gives offsets in ``-n .. -1`` days (the consortium setting
``RTCOHORT_DATE_SHIFT_MAX_DAYS`` when the key is made, default 182). Key files of
version 1 have no such field: they were made when every offset lay in
``-3650 .. -365`` days (:data:`LEGACY_DATE_OFFSET_RANGE_DAYS`), and they keep
producing exactly those offsets, so data already shifted with them stay consistent;
loading one warns. The range is part of the fingerprint (``fingerprint/v2/...``), so a
key file whose range was edited is refused as damaged, and objects carrying a
fingerprint tell which range shifted them (``docs/pseudonymisation.md``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from etl.errors import KeyCentreMismatchError, KeyFileError
from omop.private_files import open_private

__all__ = [
    "DEFAULT_DATE_SHIFT_MAX_DAYS",
    "KEY_FILE_FORMAT",
    "LEGACY_DATE_OFFSET_RANGE_DAYS",
    "MAX_DATE_SHIFT_DAYS",
    "CentreKey",
    "hmac_512_256",
    "load_key",
    "new_key",
    "normalise_centre",
    "write_key",
]

_LOG = logging.getLogger(__name__)

KEY_FILE_FORMAT = "rtcohort-centre-key"
_KEY_FILE_VERSION = 2
_LEGACY_KEY_FILE_VERSION = 1
#: Offsets of a key made before the shift was bounded (key file version 1), in days.
LEGACY_DATE_OFFSET_RANGE_DAYS = (-3650, -365)
#: Default bound of a new key's date offsets: ``-182 .. -1`` days.
DEFAULT_DATE_SHIFT_MAX_DAYS = 182
#: Largest bound a key may carry (ten years).
MAX_DATE_SHIFT_DAYS = 3650
_SECRET_BYTES = 32
_CENTRE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")


def hmac_512_256(key: bytes, message: bytes) -> bytes:
    """Return HMAC-SHA-512/256 of `message` under `key` (32 bytes).

    Examples
    --------
    >>> len(hmac_512_256(b"k", b"m"))
    32
    """
    return hmac.digest(key, message, "sha512_256")


def normalise_centre(centre: str) -> str:
    """Return the centre code in upper case, or raise if it is not a valid code.

    A centre code is 1 to 20 characters ``A-Z 0-9 _ -`` starting with a letter or a
    digit, so that ``<CENTRE>-<26 base32 characters>`` stays within 50 characters.

    Raises
    ------
    KeyFileError
        If the code is not valid.
    """
    code = centre.strip().upper()
    if not _CENTRE_RE.match(code):
        msg = (
            f"invalid centre code {centre!r}: use 1-20 characters A-Z, 0-9, '_' or '-'"
        )
        raise KeyFileError(msg)
    return code


@dataclass(frozen=True, repr=False)
class CentreKey:
    """The secret of one centre.

    Attributes
    ----------
    centre : str
        Centre code (upper case), the prefix of every pseudonym made with the key.
    secret : bytes
        The 32-byte secret. Never logged, never printed (``repr`` hides it).
    created_utc : str
        Creation time, ISO 8601 in UTC.
    date_shift_max_days : int or None
        Date offsets lie in ``-date_shift_max_days .. -1`` days; None for a legacy key
        (version 1 file), whose offsets lie in :data:`LEGACY_DATE_OFFSET_RANGE_DAYS`.

    Raises
    ------
    KeyFileError
        If `date_shift_max_days` is not None or 1 to :data:`MAX_DATE_SHIFT_DAYS`.
    """

    centre: str
    secret: bytes
    created_utc: str = ""
    date_shift_max_days: int | None = DEFAULT_DATE_SHIFT_MAX_DAYS

    def __post_init__(self) -> None:
        n = self.date_shift_max_days
        if n is not None and (
            isinstance(n, bool)
            or not isinstance(n, int)
            or not 1 <= n <= MAX_DATE_SHIFT_DAYS
        ):
            msg = (
                f"date_shift_max_days must be a whole number of days from 1 to "
                f"{MAX_DATE_SHIFT_DAYS}, got {n!r}"
            )
            raise KeyFileError(msg)

    def __repr__(self) -> str:
        return f"CentreKey(centre={self.centre!r}, fingerprint={self.fingerprint!r})"

    @property
    def legacy_date_shift(self) -> bool:
        """Whether the key shifts dates by the legacy 1 to 10 years (version 1)."""
        return self.date_shift_max_days is None

    @property
    def date_offset_range_days(self) -> tuple[int, int]:
        """Inclusive range ``(low, high)`` of the date offsets this key gives, days.

        Examples
        --------
        >>> CentreKey("AMS01", bytes(32), date_shift_max_days=90).date_offset_range_days
        (-90, -1)
        >>> legacy = CentreKey("AMS01", bytes(32), date_shift_max_days=None)
        >>> legacy.date_offset_range_days
        (-3650, -365)
        """
        if self.date_shift_max_days is None:
            return LEGACY_DATE_OFFSET_RANGE_DAYS
        return (-self.date_shift_max_days, -1)

    def derive(self, label: str) -> bytes:
        """Return the 32-byte sub-key for `label` (HMAC of the label under the secret).

        Labels used by the platform: ``pseudonym/v1``, ``date-offset/v1``, ``uid/v1``,
        ``fingerprint/v1`` (legacy keys), ``fingerprint/v2/date-shift-max-days/<n>``,
        ``audit-copy/v1/<n>``.
        """
        return hmac_512_256(self.secret, f"rtcohort/{label}".encode())

    @property
    def fingerprint(self) -> str:
        """16 hex digits identifying the key and its date-shift range, not the secret.

        A legacy key keeps its version 1 fingerprint; a bounded key's fingerprint
        covers the bound, so the same secret with another bound is another key.
        """
        if self.date_shift_max_days is None:
            return self.derive("fingerprint/v1")[:8].hex()
        label = f"fingerprint/v2/date-shift-max-days/{self.date_shift_max_days}"
        return self.derive(label)[:8].hex()

    def child(self, label: str, centre: str) -> CentreKey:
        """Return an independent key derived from this one (used for audit copies).

        The child shifts dates within the same range as this key.
        """
        return CentreKey(
            normalise_centre(centre),
            self.derive(label),
            self.created_utc,
            self.date_shift_max_days,
        )


def new_key(
    centre: str, *, date_shift_max_days: int = DEFAULT_DATE_SHIFT_MAX_DAYS
) -> CentreKey:
    """Create a fresh random key for `centre` (``secrets.token_bytes``).

    Parameters
    ----------
    centre
        Centre code.
    date_shift_max_days
        Bound of the key's date offsets (``-n .. -1`` days): the consortium setting,
        passed in by the caller (``rtcohort.wiring.new_centre_key``).
    """
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return CentreKey(
        normalise_centre(centre),
        secrets.token_bytes(_SECRET_BYTES),
        created,
        date_shift_max_days,
    )


def write_key(key: CentreKey, path: str | os.PathLike[str]) -> Path:
    """Write `key` to a new file at `path` with mode 0600; never overwrite a key.

    A legacy key (no date-shift bound) is written in the version 1 format.

    Raises
    ------
    KeyFileError
        If the file exists already or cannot be written.
    """
    target = Path(path)
    body: dict[str, object] = {
        "format": KEY_FILE_FORMAT,
        "version": _LEGACY_KEY_FILE_VERSION
        if key.legacy_date_shift
        else _KEY_FILE_VERSION,
        "centre": key.centre,
        "created_utc": key.created_utc,
    }
    if not key.legacy_date_shift:
        body["date_shift_max_days"] = key.date_shift_max_days
    body["secret_b64"] = base64.b64encode(key.secret).decode("ascii")
    body["fingerprint"] = key.fingerprint
    text = json.dumps(body, indent=2) + "\n"
    try:
        fd = open_private(target, os.O_WRONLY | os.O_EXCL)
    except FileExistsError as exc:
        msg = f"{target}: a key file exists already; refusing to overwrite it"
        raise KeyFileError(msg) from exc
    except OSError as exc:
        msg = f"{target}: cannot create key file: {exc.strerror}"
        raise KeyFileError(msg) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return target


def load_key(path: str | os.PathLike[str], centre: str | None = None) -> CentreKey:
    """Load a key file; with `centre`, refuse a key that belongs to another centre.

    A version 1 file gives a legacy key (dates shifted by 1 to 10 years), with a
    logged warning.

    Raises
    ------
    KeyFileError
        If the file is missing, not a key file, or its fingerprint does not match.
    KeyCentreMismatchError
        If `centre` is given and differs from the key's centre.
    """
    source = Path(path)
    try:
        raw = source.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise KeyFileError(f"{source}: key file not found") from exc
    except OSError as exc:
        raise KeyFileError(f"{source}: cannot read key file: {exc.strerror}") from exc
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"{source}: not a key file (invalid JSON)") from exc
    if not isinstance(body, dict) or body.get("format") != KEY_FILE_FORMAT:
        raise KeyFileError(f"{source}: not an rtcohort centre key file")
    version = body.get("version")
    if version not in (_LEGACY_KEY_FILE_VERSION, _KEY_FILE_VERSION):
        msg = f"{source}: unsupported key file version {version!r}"
        raise KeyFileError(msg)
    shift = _date_shift_field(source, body) if version == _KEY_FILE_VERSION else None
    try:
        secret = base64.b64decode(str(body["secret_b64"]), validate=True)
        key = CentreKey(
            normalise_centre(str(body["centre"])),
            secret,
            str(body.get("created_utc", "")),
            shift,
        )
    except (KeyError, binascii.Error) as exc:
        raise KeyFileError(
            f"{source}: key file lacks a valid centre or secret"
        ) from exc
    if len(secret) != _SECRET_BYTES:
        raise KeyFileError(f"{source}: secret must be {_SECRET_BYTES} bytes")
    if body.get("fingerprint") != key.fingerprint:
        raise KeyFileError(f"{source}: fingerprint does not match the secret (damaged)")
    if centre is not None and normalise_centre(centre) != key.centre:
        msg = (
            f"{source}: key belongs to centre {key.centre}, "
            f"not {normalise_centre(centre)}"
        )
        raise KeyCentreMismatchError(msg)
    if os.name == "posix" and source.stat().st_mode & 0o077:
        _LOG.warning("%s: key file is readable by other users (chmod 600)", source)
    if key.legacy_date_shift:
        _LOG.warning(
            "%s: key %s shifts dates by the legacy 365 to 3650 days (ages off by 1 to "
            "10 years); its data stay as shifted. To move to the bounded shift, make "
            "a new key and re-import (docs/pseudonymisation.md)",
            source,
            key.fingerprint,
        )
    return key


def _date_shift_field(source: Path, body: dict[str, object]) -> int:
    value = body.get("date_shift_max_days")
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_DATE_SHIFT_DAYS
    ):
        msg = (
            f"{source}: date_shift_max_days must be a whole number of days from 1 to "
            f"{MAX_DATE_SHIFT_DAYS}, got {value!r}"
        )
        raise KeyFileError(msg)
    return value
