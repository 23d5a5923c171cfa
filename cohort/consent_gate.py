"""Consent at every door: whether new data of a person are accepted, held, refused.

Every writer of patient data (the PROM link, PROM and toxicity imports, the DICOM
import through the check :mod:`rtcohort.wiring` passes in) and every export asks here,
in its own transaction, for the person's *current* consent state:

- ``consented`` (covering the scope): the data are accepted;
- not yet consented (``eligible``, ``approached``, or no record at all): DICOM is
  held as ``no-consent`` until consent is recorded;
- ``declined`` or ``withdrawn``: new data are refused with a plain message, and
  :func:`purge_held` removes what was held for the person (the caller deletes the
  files after commit, :func:`cohort.erasure_files.finish_erasure`).

On PostgreSQL the enrolment row is read ``FOR SHARE``: a decline committed by another
transaction in between waits for, or is seen by, the writer that asked. (SQLite
serialises writers anyway.)
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from cohort import audit
from cohort.consent import ConsentScope, ConsentState
from cohort.erasure import unreferenced
from cohort.erasure_files import write_journal
from cohort.errors import ConsentRefusedError
from etl.ingest.quarantine import HoldStatus
from omop.cdm import Person
from omop.cohort_tables import Enrolment
from omop.ingest_tables import QuarantineItem

__all__ = [
    "REFUSED_STATES",
    "DataUse",
    "consented_filter",
    "data_use",
    "purge_held",
    "purge_on_refusal",
    "refusal",
    "require_not_refused",
]

#: States in which no new data of the person are accepted.
REFUSED_STATES = frozenset({ConsentState.DECLINED, ConsentState.WITHDRAWN})

_SCOPE_COLUMN = {
    ConsentScope.DATA: Enrolment.scope_data,
    ConsentScope.PROMS: Enrolment.scope_proms,
    ConsentScope.LINKAGE: Enrolment.scope_linkage,
}


class DataUse(StrEnum):
    """What to do with new data of a person."""

    ACCEPT = "accept"
    HOLD = "hold"
    REFUSE = "refuse"


def _state(
    session: Session, *, person_id: int | None, pseudonym: str | None
) -> tuple[ConsentState | None, bool, bool, bool, str | None]:
    """Read (state, data, proms, linkage, pseudonym) now, in this transaction."""
    query = select(
        Enrolment.state,
        Enrolment.scope_data,
        Enrolment.scope_proms,
        Enrolment.scope_linkage,
        Person.person_source_value,
    ).join(Person, Person.person_id == Enrolment.person_id)
    if person_id is not None:
        query = query.where(Enrolment.person_id == person_id)
    else:
        query = query.where(Person.person_source_value == pseudonym)
    row = session.execute(query.with_for_update(read=True, of=Enrolment)).first()
    if row is None:
        return None, False, False, False, pseudonym
    state, data, proms, linkage, pseudo = row
    return ConsentState(state), bool(data), bool(proms), bool(linkage), pseudo


def data_use(
    session: Session,
    *,
    person_id: int | None = None,
    pseudonym: str | None = None,
    scope: ConsentScope = ConsentScope.DATA,
) -> DataUse:
    """Return whether new data of the person are accepted, held or refused.

    Give ``person_id`` or ``pseudonym`` (``person_source_value``). A person without
    an enrolment record (or unknown) is held, as one not yet consented.

    Examples
    --------
    >>> data_use(session, pseudonym="AMS01-X1")  # doctest: +SKIP
    <DataUse.HOLD: 'hold'>
    """
    state, data, proms, linkage, _ = _state(
        session, person_id=person_id, pseudonym=pseudonym
    )
    if state in REFUSED_STATES:
        return DataUse.REFUSE
    covered = {
        ConsentScope.DATA: data,
        ConsentScope.PROMS: proms,
        ConsentScope.LINKAGE: linkage,
    }[scope]
    if state is ConsentState.CONSENTED and covered:
        return DataUse.ACCEPT
    return DataUse.HOLD


def refusal(
    session: Session, *, person_id: int | None = None, pseudonym: str | None = None
) -> str | None:
    """Return why new data of the person are refused, or None when they are not."""
    state, *_rest, pseudo = _state(session, person_id=person_id, pseudonym=pseudonym)
    if state not in REFUSED_STATES:
        return None
    assert state is not None
    return f"patient {pseudo} has {state.value} consent: no new data are accepted"


def require_not_refused(session: Session, person_id: int, what: str) -> None:
    """Raise :class:`ConsentRefusedError` naming ``what`` when the person declined.

    Raises
    ------
    ConsentRefusedError
        The person's current state is ``declined`` or ``withdrawn``.
    """
    reason = refusal(session, person_id=person_id)
    if reason is not None:
        raise ConsentRefusedError(f"{what}: {reason}")


def consented_filter(
    person_id: ColumnElement[int] | QueryableAttribute[int],
    scope: ConsentScope = ConsentScope.DATA,
) -> ColumnElement[bool]:
    """Return the SQL condition: the person consents now to ``scope`` (for exports).

    A withdrawn person who was not erased, a declined one and one not yet consented
    are all left out.
    """
    return person_id.in_(
        select(Enrolment.person_id).where(
            Enrolment.state == ConsentState.CONSENTED.value,
            _SCOPE_COLUMN[scope].is_(True),
        )
    )


def purge_held(session: Session, pseudonym: str) -> list[str]:
    """Delete the held (quarantine) rows of a person; return their orphaned files.

    The returned SHA-256 hashes are those no remaining row names: journal them with
    :func:`cohort.erasure_files.write_journal` before commit and delete them with
    :func:`cohort.erasure_files.finish_erasure` after.
    """
    hashes = set(
        session.scalars(
            select(QuarantineItem.sha256).where(
                QuarantineItem.person_source_value == pseudonym,
                QuarantineItem.status == HoldStatus.HELD.value,
            )
        )
    )
    if not hashes:
        return []
    session.execute(
        delete(QuarantineItem)
        .where(
            QuarantineItem.person_source_value == pseudonym,
            QuarantineItem.status == HoldStatus.HELD.value,
        )
        .execution_options(synchronize_session=False)
    )
    return sorted(unreferenced(session, hashes))


def purge_on_refusal(
    session: Session,
    actor: str,
    person_id: int,
    pseudonym: str,
    data_dir: Path | None,
) -> list[str]:
    """Purge what was held for a person who declined or withdrew (audited).

    Deletes the held rows (:func:`purge_held`); with ``data_dir``, journals the
    orphaned files (deleted by :func:`cohort.erasure_files.finish_erasure` after
    commit, or by the next erasure if the process stops in between). The audit
    record holds counts only. Returns the orphaned hashes.
    """
    before = int(
        session.scalar(
            select(func.count())
            .select_from(QuarantineItem)
            .where(
                QuarantineItem.person_source_value == pseudonym,
                QuarantineItem.status == HoldStatus.HELD.value,
            )
        )
        or 0
    )
    if not before:
        return []
    orphans = purge_held(session, pseudonym)
    if data_dir is not None:
        write_journal(data_dir, orphans)
    audit.record(
        session,
        actor,
        "held.purge",
        f"consent refused: {before} held item(s), {len(orphans)} file(s)",
        [person_id],
    )
    return orphans
