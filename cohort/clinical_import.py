"""Import PROMs and CTCAE gradings from files: one file, one transaction, or nothing.

:mod:`instruments` parses and stores an assessment for a PERSON at a timepoint with a
date offset; this module supplies those: :func:`etl.deid.identity.identify` turns a
hospital
identifier into the pseudonym and date offset with the centre key; a subject that
arrives as a pseudonym takes its date offset from the centre's contact register
(:mod:`cohort.contacts`); the write is audited as the acting user. The CLI
(``rtcohort prom import`` / ``toxicity import``) and the web pages call
:func:`import_proms` and :func:`import_toxicity` alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cohort import audit
from cohort.centres import get_centre
from cohort.consent_gate import refusal
from cohort.contacts import date_offsets
from cohort.errors import CohortError
from cohort.permissions import Action, scope_for
from cohort.users import resolve_user
from etl.deid.identity import identify
from etl.deid.keys import CentreKey
from instruments.fhir import (
    PromResponse,
    SubjectIdentifier,
    parse_questionnaire_responses,
)
from instruments.fhir_adverse_event import ToxicityGrading, parse_adverse_events
from instruments.gradings_csv import read_gradings_csv
from instruments.store import (
    Assessment,
    StoreOutcome,
    person_id_for_pseudonym,
    store_prom,
    store_toxicity,
)
from omop.cdm import CareSite, Person
from omop.cohort_tables import AppUser
from omop.errors import RTCohortError

__all__ = ["ImportFailedError", "ImportSummary", "import_proms", "import_toxicity"]


class ImportFailedError(CohortError):
    """The file was rejected; ``problems`` says why (nothing was stored).

    ``records`` holds the outcome of each record that could be checked (``stored``,
    ``unchanged``, ``corrected`` or ``refused``); ``refused`` is true when a record
    conflicts with a stored one and no correction reason was given.
    """

    def __init__(
        self, problems: list[str], records: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(problems[0] if problems else "import failed")
        self.problems = problems
        self.records = records or []
        self.refused = any(o == StoreOutcome.REFUSED for _, o in self.records)


@dataclass
class ImportSummary:
    """What an import did: outcomes (stored, unchanged, ...), records and persons.

    ``records`` is ``(record, outcome)`` per record, in file order.
    """

    outcomes: Counter[str] = field(default_factory=Counter)
    person_ids: set[int] = field(default_factory=set)
    records: list[tuple[str, str]] = field(default_factory=list)

    def text(self, noun: str) -> str:
        """One line for a person to read.

        Examples
        --------
        >>> ImportSummary(Counter(stored=2), {1, 2}).text("grading(s)")
        'imported 2 grading(s) for 2 patient(s): 2 stored'
        """
        total = sum(self.outcomes.values())
        parts = ", ".join(f"{n} {k}" for k, n in sorted(self.outcomes.items()))
        return f"imported {total} {noun} for {len(self.person_ids)} patient(s)" + (
            f": {parts}" if parts else ""
        )


class _Patients:
    """Resolve FHIR/CSV subjects to PERSON ids and date offsets for one centre."""

    def __init__(self, session: Session, key: CentreKey, care_site_id: int) -> None:
        self.session = session
        self.key = key
        self.care_site_id = care_site_id
        self._register: dict[int, int] | None = None

    def resolve(self, subject: SubjectIdentifier) -> tuple[int, int]:
        if subject.is_pseudonym:
            pseudo, offset = subject.value, None
        else:
            who = identify(self.key, subject.value)
            pseudo, offset = who.pseudonym, who.date_offset_days
        person_id = person_id_for_pseudonym(self.session, pseudo)
        if person_id is None:
            raise LookupError(f"unknown patient (pseudonym {pseudo})")
        person = self.session.get(Person, person_id)
        site = person.care_site_id if person is not None else None
        if site is not None and site != self.care_site_id:
            raise LookupError(f"patient {pseudo} belongs to another centre")
        if offset is None:
            offset = self._offset_from_register(person_id, pseudo)
        return person_id, offset

    def _offset_from_register(self, person_id: int, pseudo: str) -> int:
        if self._register is None:
            self._register = date_offsets(self.session, self.key, self.care_site_id)
        if person_id not in self._register:
            raise LookupError(
                f"no date offset for pseudonym {pseudo} in the contact register; send"
                " the hospital identifier instead"
            )
        return self._register[person_id]


def _store_all(
    session: Session,
    patients: _Patients,
    items: list[tuple[str, str | None, SubjectIdentifier, Any]],
    default_timepoint: str | None,
    store: Callable[..., tuple[int, StoreOutcome]],
    *,
    missing_timepoint: str,
    correction_reason: str | None,
    actor: str,
) -> ImportSummary:
    """Store every item or none: collect each item's problem, raise them together.

    A patient who declined or withdrew consent is a problem of the item (read now,
    in this transaction): nothing of the file is stored.

    ``items`` are ``(where, timepoint, subject, record)``; ``store`` is
    ``instruments.store.store_prom`` or ``store_toxicity``. A record that conflicts
    with a stored one and has no correction reason is ``refused``: a problem too.
    """
    summary = ImportSummary()
    problems: list[str] = []
    for where, own_timepoint, subject, record in items:
        timepoint = own_timepoint or default_timepoint
        if timepoint is None:
            problems.append(f"{where}: {missing_timepoint}")
            continue
        try:
            person_id, offset = patients.resolve(subject)
            refused = refusal(session, person_id=person_id)
            if refused is not None:
                problems.append(f"{where}: {refused}")
                continue
            _, outcome = store(
                session,
                Assessment(person_id, timepoint, offset),
                record,
                correction_reason=correction_reason,
                actor=actor,
            )
        except (LookupError, RTCohortError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        summary.records.append((where, outcome.value))
        if outcome is StoreOutcome.REFUSED:
            problems.append(
                f"{where}: refused: differs from the stored version; to correct it,"
                " import again with --correct REASON"
            )
            continue
        summary.outcomes[outcome.value] += 1
        summary.person_ids.add(person_id)
    if problems:
        raise ImportFailedError(problems, summary.records)
    return summary


def _label(path: Path, grading: ToxicityGrading, is_csv: bool) -> str:
    """Name a grading in messages: ``tox.csv line 3`` or ``ae.json AdverseEvent/x``."""
    if is_csv:
        return f"{path.name} line {grading.resource_id.rpartition(':')[2]}"
    return f"{path.name} AdverseEvent/{grading.resource_id}"


def _writer(
    session: Session, actor: AppUser | str, centre: str
) -> tuple[str, CareSite]:
    """Return the acting user's name and the centre, if the user may write there.

    Raises
    ------
    PermissionDeniedError
        When the user may not write to ``centre`` (audited as a refusal).
    ImportFailedError
        For an unknown centre.
    """
    user = resolve_user(session, actor)
    try:
        site = get_centre(session, centre)
    except RTCohortError as exc:
        raise _rejected(exc) from None
    scope_for(session, user, Action.WRITE).require_centre(site)
    return user.username, site


def _rejected(exc: RTCohortError) -> ImportFailedError:
    return ImportFailedError(getattr(exc, "problems", None) or [str(exc)])


def import_proms(
    session: Session,
    key: CentreKey,
    centre: str,
    path: Path,
    *,
    actor: AppUser | str,
    default_timepoint: str | None = None,
    correction_reason: str | None = None,
) -> ImportSummary:
    """Parse, validate and store every QuestionnaireResponse of a FHIR JSON file.

    Parameters
    ----------
    session : Session
        The caller's transaction (rolled back by the caller on failure).
    key : CentreKey
        The centre's key: pseudonymises hospital identifiers, reads the register.
    centre : str
        The centre code the patients belong to.
    path : Path
        A FHIR Bundle or QuestionnaireResponse (JSON).
    actor : AppUser or str
        The acting user (or its name); must be allowed to write to ``centre``
        (:func:`cohort.permissions.scope_for`); audited as ``prom.import``.
    default_timepoint : str, optional
        The timepoint of responses that carry none.
    correction_reason : str, optional
        Why records that differ from stored ones are corrected (``--correct``):
        each becomes the new version, the earlier one moved to the history.
        Without it such a record is refused and the file rejected.

    Raises
    ------
    PermissionDeniedError
        When ``actor`` may not write to ``centre`` (checked first; audited).
    ImportFailedError
        Any problem in any resource; nothing is stored by this call.
    """
    name, site = _writer(session, actor, centre)
    try:
        responses: list[PromResponse] = parse_questionnaire_responses(
            path.read_bytes(), source=path.name
        )
    except OSError as exc:
        raise ImportFailedError([f"{path}: cannot read ({exc.strerror})"]) from None
    except RTCohortError as exc:
        raise _rejected(exc) from None
    summary = _store_all(
        session,
        _Patients(session, key, site.care_site_id),
        [
            (
                f"{path.name} QuestionnaireResponse/{r.resource_id}",
                r.timepoint,
                r.subject,
                r,
            )
            for r in responses
        ],
        default_timepoint,
        store_prom,
        missing_timepoint="no timepoint (extension or --timepoint)",
        correction_reason=correction_reason,
        actor=name,
    )
    audit.record(
        session,
        name,
        "prom.import",
        f"{len(responses)} questionnaire(s) from {path.name}",
        summary.person_ids,
    )
    return summary


def import_toxicity(
    session: Session,
    key: CentreKey,
    centre: str,
    path: Path,
    *,
    actor: AppUser | str,
    default_timepoint: str | None = None,
    correction_reason: str | None = None,
) -> ImportSummary:
    """Parse, validate and store CTCAE gradings from a FHIR JSON or a CSV file.

    A file ending in ``.csv``, or not starting with ``{``, is read by
    :func:`instruments.gradings_csv.read_gradings_csv`; otherwise as FHIR
    AdverseEvent resources. Parameters as :func:`import_proms` (audited as
    ``toxicity.import``).

    Raises
    ------
    PermissionDeniedError
        When ``actor`` may not write to ``centre`` (checked first; audited).
    ImportFailedError
        Any problem in any row or resource; nothing is stored by this call.
    """
    name, site = _writer(session, actor, centre)
    gradings: list[ToxicityGrading]
    is_csv = False
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() == ".csv" or not text.lstrip().startswith("{"):
            is_csv = True
            gradings = read_gradings_csv(path, text)
        else:
            gradings = parse_adverse_events(text, source=path.name)
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFailedError([f"{path}: cannot read ({exc})"]) from None
    except RTCohortError as exc:
        raise _rejected(exc) from None
    summary = _store_all(
        session,
        _Patients(session, key, site.care_site_id),
        [(_label(path, g, is_csv), g.timepoint, g.subject, g) for g in gradings],
        default_timepoint,
        store_toxicity,
        missing_timepoint="no timepoint",
        correction_reason=correction_reason,
        actor=name,
    )
    audit.record(
        session,
        name,
        "toxicity.import",
        f"{len(gradings)} grading(s) from {path.name}",
        summary.person_ids,
    )
    return summary
