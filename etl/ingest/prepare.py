"""Stage 1 of the import: prepare one file (runs in a worker).

Integrity check, pseudonymisation (objects already pseudonymised with this key pass
unchanged), into the file store, header index. A blocking problem holds the file as
received (:mod:`etl.ingest.quarantine`). :func:`prepare_file` is sent to worker
processes, so it stays a module-level function with picklable arguments.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from etl.deid.identity import raw_pseudonym
from etl.deid.keys import CentreKey
from etl.deid.pseudonymise import DeidOutcome, deidentify_bytes
from etl.dicom.index import IndexedObject, index_bytes
from etl.errors import EtlError
from etl.ingest.files import read_file
from etl.ingest.qa import Finding, Reason, check_integrity, classify_deid_refusal
from etl.ingest.quarantine import stash_raw
from omop.filestore import FileStore

__all__ = ["Prepared", "Source", "prepare_file", "raw_pseudonym"]


@dataclass(frozen=True)
class Source:
    """A file to import; ``pseudonymised`` when it is already (a held object)."""

    path: str
    pseudonymised: bool = False


@dataclass
class Prepared:
    """What preparing one file gave: an indexed object, or a finding that holds it."""

    source: str
    obj: IndexedObject | None = None
    finding: Finding | None = None
    held_path: str = ""
    sha256: str = ""
    seconds: float = 0.0
    pseudonym: str | None = None


def prepare_file(
    src: Source,
    key: CentreKey | None,
    store_root: str,
    quarantine_dir: str,
    keywords: tuple[str, ...],
) -> Prepared:
    """Read, check, pseudonymise, store and index one file.

    Parameters
    ----------
    src
        The file.
    key
        The centre key (None: only already pseudonymised files can pass).
    store_root, quarantine_dir
        Folders of the file store and of files held as received.
    keywords
        Extra header keywords to index (the triggers need them).

    Returns
    -------
    Prepared
        ``obj`` set when the file passed, otherwise ``finding`` (and ``held_path``).
    """
    start = time.perf_counter()
    out = Prepared(src.path)
    try:
        data = read_file(src.path)
    except OSError as exc:
        out.finding = Finding(
            Reason.UNREADABLE, f"cannot read the file ({exc.strerror})"
        )
        out.seconds = time.perf_counter() - start
        return out
    raw_sha = hashlib.sha256(data).hexdigest()

    def held(finding: Finding) -> Prepared:
        out.finding = finding
        out.sha256 = raw_sha
        if src.pseudonymised:
            out.held_path = src.path
        else:
            out.held_path = str(stash_raw(Path(quarantine_dir), data))
            out.pseudonym = raw_pseudonym(data, key)
        out.seconds = time.perf_counter() - start
        return out

    problem = check_integrity(data)
    if problem is not None:
        return held(problem)
    if not src.pseudonymised:
        if key is None:
            return held(
                Finding(Reason.UNREADABLE, "not pseudonymised and no key given")
            )
        result = deidentify_bytes(data, key)
        if result.outcome is DeidOutcome.QUARANTINED or result.data is None:
            return held(Finding(classify_deid_refusal(result.reason), result.reason))
        data = result.data
    store = FileStore(Path(store_root))
    sha = store.put(data, durable=False)  # run_import syncs before any load
    try:
        out.obj = index_bytes(data, str(store.path(sha)), sha, keywords)
    except EtlError as exc:
        return held(Finding(Reason.UNREADABLE, str(exc)))
    out.sha256 = sha
    out.seconds = time.perf_counter() - start
    return out
