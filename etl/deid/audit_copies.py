"""Audit copies: N independently anonymised copies of a data set (an Audit Tool).

Copy ``n`` (1-based) is pseudonymised with its own key, derived from the centre key as
``HMAC-SHA-512/256(secret, "rtcohort/audit-copy/v1/<n>")`` with the centre code
``<CENTRE>-A<n>``: each copy has its own patient pseudonyms, date offsets and UIDs,
reproducible from the centre key, and unlinkable to the others without it. Input that
the centre key already pseudonymised is pseudonymised again for each copy (the only
place that happens). After writing, every UID of every copy is checked against the
other copies and the source: a collision raises. Each copy folder gets a manifest of
whom its files belong to, readable only with the centre key, so erasure can find a
person's files in it (:mod:`etl.deid.audit_owners`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from etl.deid import audit_owners
from etl.deid.codec import split_file, top_level_values
from etl.deid.identity import raw_pseudonym
from etl.deid.keys import CentreKey
from etl.deid.pseudonymise import deidentify_bytes, write_atomic
from etl.errors import DeidRefusedError, EtlError

__all__ = [
    "MAX_COPIES",
    "AuditCopiesReport",
    "AuditCopyCollisionError",
    "copy_key",
    "write_audit_copies",
]

MAX_COPIES = 99
_IMPLICIT_LE = "1.2.840.10008.1.2"


class AuditCopyCollisionError(EtlError, RuntimeError):
    """Two audit copies (or a copy and the source) share a UID."""


@dataclass
class AuditCopiesReport:
    """What :func:`write_audit_copies` wrote."""

    copies: int
    files: int = 0
    written: int = 0
    quarantined: list[dict[str, str]] = field(default_factory=list)
    pseudonyms: dict[int, list[str]] = field(default_factory=dict)


def copy_key(key: CentreKey, index: int) -> CentreKey:
    """Return the key of audit copy `index` (1-based)."""
    if not 1 <= index <= MAX_COPIES:
        raise ValueError(f"copy index must be 1..{MAX_COPIES}, got {index}")
    centre = f"{key.centre[: 20 - 4]}-A{index}"
    return key.child(f"audit-copy/v1/{index}", centre)


def _uids(data: bytes) -> set[str]:
    """Top-level instance, series, study and frame-of-reference UIDs of an object."""
    meta, body = split_file(data)
    implicit = meta.get(0x00020010, b"").rstrip(b"\x00 ").decode() == _IMPLICIT_LE
    tags = (0x00080018, 0x0020000E, 0x0020000D, 0x00200052)
    found = top_level_values(body, implicit, lambda tag, _vr: tag in tags)
    return {v[1].decode("latin-1").rstrip("\x00 ") for v in found.values()}


def write_audit_copies(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    key: CentreKey,
    copies: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> AuditCopiesReport:
    """Write ``target/copy_<n>/...`` for n = 1..copies, keeping the folder layout."""
    if not 1 <= copies <= MAX_COPIES:
        raise ValueError(f"--copies must be 1..{MAX_COPIES}, got {copies}")
    root, out = Path(source), Path(target)
    paths = sorted(
        p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
    )
    report = AuditCopiesReport(copies=copies, files=len(paths))
    keys = [copy_key(key, n) for n in range(1, copies + 1)]
    accept = frozenset({key.fingerprint})
    seen: dict[str, str] = {}
    done = 0
    for path in paths:
        data = path.read_bytes()
        centre_pseudonym = raw_pseudonym(data, key)
        try:
            for uid in _uids(data):
                seen.setdefault(uid, "source")
        except DeidRefusedError:
            pass
        for n, sub in enumerate(keys, 1):
            result = deidentify_bytes(data, sub, accept_fingerprints=accept)
            if result.data is None:
                if n == 1:
                    report.quarantined.append(
                        {"file": str(path.relative_to(root)), "reason": result.reason}
                    )
                continue
            for uid in _uids(result.data):
                owner = seen.setdefault(uid, f"copy {n}")
                if owner != f"copy {n}":
                    raise AuditCopyCollisionError(
                        f"UID {uid} of copy {n} also in {owner}"
                    )
            relative = path.relative_to(root)
            write_atomic(out / f"copy_{n}" / relative, result.data)
            tag = (
                audit_owners.owner_tag(sub, centre_pseudonym)
                if centre_pseudonym
                else None
            )
            audit_owners.record(
                out / f"copy_{n}", relative.as_posix(), result.data, tag
            )
            report.written += 1
            names = report.pseudonyms.setdefault(n, [])
            if result.pseudonym and result.pseudonym not in names:
                names.append(result.pseudonym)
            done += 1
            if progress is not None:
                progress(done, len(paths) * copies)
    return report
