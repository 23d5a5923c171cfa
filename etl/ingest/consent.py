"""The import's consent door: load, hold or refuse a patient's dataset.

The ETL does not know consent (ARCHITECTURE.md 1): the composition root passes in a
:data:`ConsentCheck`, asked in the transaction that decides (resolution) and again in
the transaction that loads, so a decline recorded in between is honoured:

- :attr:`ConsentDecision.LOAD`: consented to data use;
- :attr:`ConsentDecision.HOLD`: not yet consented: held as ``no-consent``;
- :attr:`ConsentDecision.REFUSE`: declined or withdrawn: nothing is stored; the
  files the run put in the file store, and earlier held rows of the same files, are
  discarded (:func:`discard`, then :func:`delete_files` after commit).

A check may also return a plain ``bool`` (True: load, False: hold).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from etl.errors import EtlError
from etl.ingest.quarantine import HoldStatus
from omop.filestore import FileStore
from omop.ingest_tables import IngestObject, QuarantineItem
from omop.platform import StoredFile

__all__ = [
    "REFUSED_REASON",
    "ConsentChangedError",
    "ConsentCheck",
    "ConsentDecision",
    "decide",
    "delete_files",
    "discard",
]

#: Reason under which ``ImportSummary.refused`` counts the files of refused datasets.
REFUSED_REASON = "consent-declined-or-withdrawn"


class ConsentDecision(StrEnum):
    """What the import does with a patient's dataset."""

    LOAD = "load"
    HOLD = "hold"
    REFUSE = "refuse"


#: ``(session, person_source_value) -> decision`` (or bool: True load, False hold).
ConsentCheck = Callable[[Session, str], "bool | ConsentDecision"]


class ConsentChangedError(EtlError):
    """The consent changed between resolution and load; the load rolls back."""

    def __init__(self, decision: ConsentDecision) -> None:
        super().__init__(f"consent changed before load: {decision.value}")
        self.decision = decision


def decide(
    check: ConsentCheck | None, session: Session, pseudonym: str
) -> ConsentDecision:
    """Ask the check (None: no consent door, load) and normalise its answer."""
    if check is None:
        return ConsentDecision.LOAD
    answer = check(session, pseudonym)
    if isinstance(answer, ConsentDecision):
        return answer
    return ConsentDecision.LOAD if answer else ConsentDecision.HOLD


def discard(session: Session, sha256s: Iterable[str]) -> list[str]:
    """Drop held rows of these files; return the hashes no row names any more.

    Delete the returned files from the store after commit (:func:`delete_files`).
    """
    hashes = sorted(set(sha256s))
    orphans: list[str] = []
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        session.execute(
            delete(QuarantineItem)
            .where(
                QuarantineItem.sha256.in_(chunk),
                QuarantineItem.status == HoldStatus.HELD.value,
            )
            .execution_options(synchronize_session=False)
        )
        named: set[str] = set()
        for column in (QuarantineItem.sha256, IngestObject.sha256, StoredFile.sha256):
            named.update(session.scalars(select(column).where(column.in_(chunk))))
        orphans.extend(h for h in chunk if h not in named)
    return orphans


def delete_files(store: FileStore, sha256s: Iterable[str]) -> int:
    """Delete discarded files from the store (after commit); return how many."""
    return sum(1 for digest in set(sha256s) if store.delete(digest))
