"""Project pseudonyms computed independently of cohort.project_keys (for assertions).

Written from the documented definition: ``P-<code>-`` and the first 10 base32
characters of HMAC-SHA-256(project key, ``person|<stored pseudonym>``), the key read
from ``<data_dir>/keys/projects/<code>.key``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from rtcohort.wiring import project_keys_folder


def project_label(code: str, stored_pseudonym: str) -> str:
    key = (project_keys_folder() / f"{code}.key").read_bytes()
    mac = hmac.new(key, b"person|" + stored_pseudonym.encode(), hashlib.sha256)
    return f"P-{code}-" + base64.b32encode(mac.digest()).decode()[:10]


def labels(code: str, stored: Iterable[str]) -> dict[str, str]:
    """Return ``{project pseudonym: stored pseudonym}``."""
    return {project_label(code, s): s for s in stored}
