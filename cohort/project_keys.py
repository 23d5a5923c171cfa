"""Project pseudonyms: what a researcher sees instead of the stored pseudonym.

Stored pseudonyms (``person_source_value``) keep their centre prefix. Everything a
researcher sees or downloads is relabelled per project with a key that never enters
the database, one file per project ``<folder>/<CODE>.key`` (32 random bytes, mode
0600; default folder ``<data_dir>/keys/projects``, set by :mod:`rtcohort.wiring`):

    P-<project code>-<10 base32 characters of HMAC-SHA-256(key, "person|" + pseudonym)>

No centre prefix and no centre column, unless the project's protocol grants analysis
by centre (``project.centre_level``). Two projects' labels of the same person cannot
be linked without both keys. Course and dose-object identifiers are relabelled the
same way (:meth:`ProjectPseudonyms.label`), so no identifier column is shared by two
projects' exports.

The key is created with the project (:func:`cohort.service.create_project`); for a
project created before keys existed, at its first use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from cohort.errors import InvalidInputError
from cohort.projects import get_project
from omop.private_files import random_key_file

__all__ = [
    "ProjectPseudonyms",
    "ensure_project_key",
    "for_project",
    "keys_folder",
    "project_key_path",
    "set_keys_folder_provider",
]

_KEY_BYTES = 32
_LABEL_CHARS = 10
_SAFE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
_folder_provider: Callable[[], Path] | None = None


def set_keys_folder_provider(provider: Callable[[], Path] | None) -> None:
    """Set the process default of the project key folder (the wiring does)."""
    global _folder_provider  # noqa: PLW0603 - one process default, set by the wiring
    _folder_provider = provider


def keys_folder(folder: Path | None = None) -> Path:
    """Return ``folder``, or the process default.

    Raises
    ------
    InvalidInputError
        When neither is set.
    """
    if folder is not None:
        return folder
    if _folder_provider is None:
        raise InvalidInputError(
            "project key folder not configured (rtcohort.wiring.configure_audit)"
        )
    return _folder_provider()


def project_key_path(folder: Path, code: str) -> Path:
    """Return the key file of a project; refuse a code unfit for a file name."""
    if not _SAFE_CODE.match(code):
        raise InvalidInputError(
            f"project code {code!r}: letters, digits, '.', '_' and '-' only "
            "(it names the project's key file)"
        )
    return folder / f"{code}.key"


def ensure_project_key(folder: Path, code: str) -> bytes:
    """Return the project's key, creating the file (0600, in a 0700 folder) if absent.

    Raises
    ------
    InvalidInputError
        For a code unfit for a file name, or a damaged key file.
    """
    path = project_key_path(folder, code)
    key = random_key_file(path, _KEY_BYTES)
    if len(key) != _KEY_BYTES:
        raise InvalidInputError(f"{path}: not a project pseudonym key")
    return key


@dataclass(frozen=True)
class ProjectPseudonyms:
    """The relabelling of one project (see the module notes).

    Examples
    --------
    >>> view = ProjectPseudonyms("LUNG1", bytes(32), centre_level=False)
    >>> label = view.person("AMS01-0123456789abcdef")
    >>> label.startswith("P-LUNG1-"), len(label) == len("P-LUNG1-") + 10
    (True, True)
    """

    code: str
    key: bytes
    centre_level: bool = False

    def _mac(self, kind: str, value: str) -> str:
        digest = hmac.new(self.key, f"{kind}|{value}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode("ascii")[:_LABEL_CHARS]

    def person(self, person_source_value: str) -> str:
        """Return the project pseudonym of a stored pseudonym."""
        return f"P-{self.code}-{self._mac('person', person_source_value)}"

    def label(self, kind: str, value: str) -> str:
        """Return the project's label of another identifier (``C`` course, ...)."""
        return f"{kind}-{self._mac(kind, value)}"


def for_project(
    session: Session, code: str, folder: Path | None = None
) -> ProjectPseudonyms:
    """Return the relabelling of a project (its key from ``folder`` or the default).

    Raises
    ------
    UnknownProjectError
        For an unknown project code.
    """
    project = get_project(session, code)
    key = ensure_project_key(keys_folder(folder), project.code)
    return ProjectPseudonyms(project.code, key, bool(project.centre_level))
