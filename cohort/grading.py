"""A clinician's CTCAE grading of one patient at one timepoint (the web form's service).

:func:`open_grading` reads what the grading form shows (the treatment site's shortlist,
the grades stored at the timepoint and earlier ones, notes and corrections) with a
``version`` fingerprint of the timepoint's stored state; :func:`record_grading` stores
the form through :func:`instruments.store.store_toxicity` after the permission layer
(``write`` on the patient's centre), the consent gate and the fingerprint check: when
someone else saved the timepoint since the form opened, nothing is written and
:class:`StaleGradingError` says so. A grade that differs from the stored one needs a
correction reason (:class:`CorrectionNeededError` otherwise); it becomes a new
version. Dates are real dates (the date offset comes from the contact register,
read with the centre key). Nothing here commits.
"""

from __future__ import annotations

import datetime
import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import audit
from cohort.consent_gate import refusal
from cohort.contacts import date_offsets
from cohort.errors import (
    CohortError,
    ConsentRefusedError,
    ContactKeyError,
    InvalidInputError,
    UnknownPersonError,
)
from cohort.permissions import Action, scope_for
from cohort.protocol import protocol_timepoints
from cohort.users import resolve_user
from etl.deid.keys import CentreKey
from instruments.ctcae import CtcaeTerm, load_catalogue
from instruments.errors import InstrumentError, ShortlistError
from instruments.fhir import PSEUDONYM_SYSTEM, SubjectIdentifier
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.shortlists import TreatmentSite, shortlist
from instruments.store import (
    Assessment,
    StoreOutcome,
    assessment_history,
    read_toxicity,
    store_toxicity,
)
from instruments.store.notes import read_grading_notes, store_grading_note
from instruments.store.versions import toxicity_key
from omop.cdm import CareSite, Person
from omop.cohort_tables import AppUser, Enrolment

__all__ = [
    "CTCAE_VERSION",
    "CorrectionNeededError",
    "GradingResult",
    "GradingSheet",
    "KeyFor",
    "StaleGradingError",
    "StoredGrade",
    "TermGrade",
    "open_grading",
    "record_grading",
]

CTCAE_VERSION = "5.0"

#: The centre key of a centre code (None: the key folder has none).
KeyFor = Callable[[str], CentreKey | None]


class StaleGradingError(CohortError):
    """Someone saved this patient's timepoint after the form was opened."""


class CorrectionNeededError(CohortError, ValueError):
    """Grades differ from the stored ones and no correction reason was given."""

    def __init__(self, terms: list[str]) -> None:
        super().__init__(f"correction reason needed for: {', '.join(terms)}")
        self.terms = terms


@dataclass(frozen=True)
class TermGrade:
    """One term of the form: CTCAE term (name or MedDRA code), grade, attribution."""

    term: str
    grade: int
    attribution: str | None = None


@dataclass(frozen=True)
class StoredGrade:
    """A stored grading (``assessed_on`` real; ``versions`` 1: never corrected)."""

    timepoint: str
    term: str
    meddra_code: str
    grade: int
    attribution: str | None
    assessed_on: datetime.date
    versions: int = 1
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class GradingSheet:
    """What the grading form of one patient x timepoint shows."""

    pseudonym: str
    centre: str
    timepoint: str
    treatment_site: str
    shortlist: tuple[CtcaeTerm, ...]
    current: dict[str, StoredGrade]
    earlier: list[StoredGrade]
    notes: list[tuple[str, datetime.date, str]]
    version: str


@dataclass(frozen=True)
class GradingResult:
    """What :func:`record_grading` did: outcomes per term and the new fingerprint."""

    outcomes: dict[str, str] = field(default_factory=dict)
    version: str = ""

    @property
    def counts(self) -> Counter[str]:
        """How many terms per outcome."""
        return Counter(self.outcomes.values())


@dataclass(frozen=True)
class _Patient:
    user: AppUser
    person_id: int
    centre: CareSite
    enrolment: Enrolment
    offset: int


def _patient(
    session: Session,
    actor: AppUser | str,
    pseudonym: str,
    timepoint: str,
    key_for: KeyFor,
    *,
    lock: bool = False,
) -> _Patient:
    user = resolve_user(session, actor)
    query = select(Person).where(Person.person_source_value == pseudonym)
    person = session.scalar(query.with_for_update() if lock else query)
    if person is None:
        scope_for(session, user, Action.WRITE).require()
        raise UnknownPersonError(f"unknown person {pseudonym}")
    centre = session.get(CareSite, person.care_site_id)
    if centre is None:
        raise UnknownPersonError(f"person {pseudonym} has no centre")
    scope_for(session, user, Action.WRITE).require_centre(centre)
    enrolment = session.get(Enrolment, person.person_id)
    if enrolment is None:
        raise UnknownPersonError(f"person {pseudonym} is not enrolled")
    codes = [
        tp.code
        for tp in protocol_timepoints(session, enrolment.protocol_code)
        if tp.toxicity
    ]
    if timepoint not in codes:
        raise InvalidInputError(
            f"timepoint {timepoint!r}: not a toxicity timepoint of the protocol"
            f" ({', '.join(codes)})"
        )
    key = key_for(str(centre.care_site_source_value))
    if key is None:
        raise ContactKeyError(
            f"no key of centre {centre.care_site_source_value} in the key folder"
        )
    offsets = date_offsets(session, key, centre.care_site_id)
    if person.person_id not in offsets:
        raise ContactKeyError(f"no date offset for {pseudonym} in the contact register")
    return _Patient(
        user, person.person_id, centre, enrolment, offsets[person.person_id]
    )


def _stored(session: Session, who: _Patient) -> list[StoredGrade]:
    frame = read_toxicity(session, [who.person_id])
    out = []
    for row in frame.itertuples(index=False):
        key = toxicity_key(
            str(row.ctcae_version), str(row.meddra_code), str(row.timepoint)
        )
        history = assessment_history(session, who.person_id, "toxicity", key)
        out.append(
            StoredGrade(
                timepoint=str(row.timepoint),
                term=str(row.term),
                meddra_code=str(row.meddra_code),
                grade=int(row.grade),
                attribution=None if row.attribution is None else str(row.attribution),
                assessed_on=row.assessed_on - datetime.timedelta(days=who.offset),
                versions=max(len(history), 1),
                reasons=tuple(v.reason or "" for v in history if v.reason),
            )
        )
    return out


def _fingerprint(
    grades: Sequence[StoredGrade], note_ids: Sequence[int], timepoint: str
) -> str:
    parts = sorted(
        f"{g.meddra_code}|{g.grade}|{g.attribution}|{g.assessed_on}|{g.versions}"
        for g in grades
        if g.timepoint == timepoint
    )
    parts += [f"note {n}" for n in sorted(note_ids)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _state(
    session: Session, who: _Patient, timepoint: str
) -> tuple[list[StoredGrade], list[tuple[str, datetime.date, str]], str]:
    grades = _stored(session, who)
    notes = read_grading_notes(session, who.person_id)
    version = _fingerprint(
        grades, [n.note_id for n in notes if n.timepoint == timepoint], timepoint
    )
    shown = [
        (n.timepoint, n.written_on - datetime.timedelta(days=who.offset), n.text)
        for n in notes
    ]
    return grades, shown, version


def open_grading(
    session: Session,
    actor: AppUser | str,
    pseudonym: str,
    timepoint: str,
    *,
    key_for: KeyFor,
) -> GradingSheet:
    """Return what the grading form shows (audited as ``toxicity.read``).

    Raises
    ------
    PermissionDeniedError
        The user may not write to the patient's centre (audited).
    UnknownPersonError, InvalidInputError, ContactKeyError
        Unknown patient, a timepoint without toxicity, no key or date offset.
    """
    who = _patient(session, actor, pseudonym, timepoint, key_for)
    grades, notes, version = _state(session, who, timepoint)
    try:
        terms = shortlist(
            TreatmentSite.parse(who.enrolment.treatment_site), CTCAE_VERSION
        )
    except ShortlistError:
        terms = shortlist(TreatmentSite.OTHER, CTCAE_VERSION)
    audit.record(
        session,
        who.user.username,
        "toxicity.read",
        f"grading form {timepoint}",
        [who.person_id],
    )
    return GradingSheet(
        pseudonym=pseudonym,
        centre=str(who.centre.care_site_source_value),
        timepoint=timepoint,
        treatment_site=who.enrolment.treatment_site,
        shortlist=terms,
        current={g.meddra_code: g for g in grades if g.timepoint == timepoint},
        earlier=[g for g in grades if g.timepoint != timepoint],
        notes=notes,
        version=version,
    )


def _validated(gradings: Sequence[TermGrade]) -> list[tuple[CtcaeTerm, TermGrade]]:
    catalogue = load_catalogue(CTCAE_VERSION)
    problems: list[str] = []
    out: list[tuple[CtcaeTerm, TermGrade]] = []
    seen: set[str] = set()
    for item in gradings:
        try:
            problem = catalogue.grade_problem(item.term, item.grade)
            entry = catalogue.term(item.term)
        except InstrumentError as exc:
            problems.append(str(exc))
            continue
        if problem is not None:
            problems.append(problem)
        elif entry.meddra_code in seen:
            problems.append(f"{entry.term} is listed twice")
        else:
            seen.add(entry.meddra_code)
            out.append((entry, item))
    if not gradings:
        problems.append("no terms graded")
    if problems:
        raise InvalidInputError("; ".join(problems))
    return out


def record_grading(
    session: Session,
    actor: AppUser | str,
    pseudonym: str,
    timepoint: str,
    gradings: Sequence[TermGrade],
    *,
    key_for: KeyFor,
    assessed_on: datetime.date,
    expected_version: str,
    correction_reason: str | None = None,
    note: str | None = None,
) -> GradingResult:
    """Store the grading form of one patient x timepoint (audited ``toxicity.record``).

    Parameters
    ----------
    key_for
        The centre key of a centre code (reads the date offset from the register).
    gradings
        The terms and grades of the form (grade 0: assessed, absent; attribution is
        kept for grades 1-5 only).
    assessed_on
        The real date of the assessment.
    expected_version
        :attr:`GradingSheet.version` when the form was opened.
    correction_reason
        Why stored grades are changed (a new version each).
    note
        Free text, stored as typed (a new NOTE row).

    Raises
    ------
    StaleGradingError
        The timepoint was saved by someone else since the form opened (nothing written).
    CorrectionNeededError
        A grade differs from the stored one and no reason was given; the caller rolls
        back (nothing kept).
    InvalidInputError
        A term unknown in CTCAE v5.0, a grade the term does not define, a term twice.
    ConsentRefusedError, PermissionDeniedError
        The patient declined or withdrew; the user may not write to the centre.
    """
    who = _patient(session, actor, pseudonym, timepoint, key_for, lock=True)
    reason = refusal(session, person_id=who.person_id)
    if reason is not None:
        raise ConsentRefusedError(reason)
    checked = _validated(gradings)
    _grades, _notes, version = _state(session, who, timepoint)
    if version != expected_version:
        raise StaleGradingError(
            f"{pseudonym} {timepoint} was saved by someone else after the form opened"
        )
    where = Assessment(who.person_id, timepoint, who.offset)
    subject = SubjectIdentifier(PSEUDONYM_SYSTEM, pseudonym)
    outcomes: dict[str, str] = {}
    refused: list[str] = []
    try:
        for entry, item in checked:
            grading = ToxicityGrading(
                resource_id=f"web-{pseudonym}-{timepoint}-{entry.meddra_code}",
                subject=subject,
                version=CTCAE_VERSION,
                term=entry.term,
                grade=item.grade,
                assessed_on=assessed_on,
                attribution=item.attribution if item.grade > 0 else None,
                timepoint=timepoint,
            )
            _, outcome = store_toxicity(
                session,
                where,
                grading,
                correction_reason=correction_reason,
                actor=who.user.username,
            )
            outcomes[entry.term] = outcome.value
            if outcome is StoreOutcome.REFUSED:
                refused.append(entry.term)
        if note and note.strip():
            store_grading_note(session, where, note, assessed_on)
    except InstrumentError as exc:
        raise InvalidInputError(str(exc)) from None
    if refused:
        raise CorrectionNeededError(refused)
    counts = Counter(outcomes.values())
    audit.record(
        session,
        who.user.username,
        "toxicity.record",
        f"{timepoint}: {len(outcomes)} term(s) "
        + " ".join(f"{k}={n}" for k, n in sorted(counts.items()))
        + (" +note" if note and note.strip() else ""),
        [who.person_id],
    )
    return GradingResult(outcomes, _state(session, who, timepoint)[2])
