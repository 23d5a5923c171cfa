"""Wiring of `rtcohort prom import` and `rtcohort toxicity import`.

The `instruments` package stores an assessment for a PERSON at a timepoint with a date
offset; this module supplies those from the other packages: the centre key
(:mod:`etl.keys`) turns a hospital identifier into the pseudonym and date offset
(:mod:`etl.deid`); a pseudonym that arrives as such takes its date offset from the
centre's contact register (:mod:`cohort.contacts`); the write is audited
(:mod:`cohort.audit`). Everything of one file is stored in one transaction, or nothing.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from etl.keys import CentreKey
    from instruments.fhir import PromResponse, SubjectIdentifier
    from instruments.fhir_adverse_event import ToxicityGrading
    from instruments.store import Assessment

__all__ = ["ImportFailedError", "ImportSummary", "import_proms", "import_toxicity"]

CSV_COLUMNS = (
    "patient_id",
    "timepoint",
    "assessed_on",
    "ctcae_version",
    "term",
    "grade",
    "attribution",
)
_CSV_SYSTEM = "urn:rtcohort:csv:patient_id"


class ImportFailedError(Exception):
    """The file was rejected; ``problems`` says why (nothing was stored)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0] if problems else "import failed")
        self.problems = problems


@dataclass
class ImportSummary:
    """What an import did."""

    outcomes: Counter[str] = field(default_factory=Counter)
    person_ids: set[int] = field(default_factory=set)

    def text(self, noun: str) -> str:
        """One line for a person to read."""
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
        from etl.deid import date_offset_days, pseudonym
        from instruments.store import person_id_for_pseudonym
        from omop.cdm import Person

        if subject.is_pseudonym:
            pseudo, offset = subject.value, None
        else:
            pseudo = pseudonym(self.key, subject.value)
            offset = date_offset_days(self.key, subject.value)
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
        from cohort.contacts import date_offsets

        if self._register is None:
            self._register = date_offsets(self.session, self.key, self.care_site_id)
        if person_id not in self._register:
            raise LookupError(
                f"no date offset for pseudonym {pseudo} in the contact register; send"
                " the hospital identifier instead"
            )
        return self._register[person_id]


def _audit(session: Session, action: str, detail: str, persons: set[int]) -> None:
    from cohort.audit import record
    from rtcohort.settings import get_settings

    record(session, get_settings().user, action, detail, persons)


def _store_all(
    session: Session,
    patients: _Patients,
    items: list[tuple[str, str | None, Any, Any]],
    default_timepoint: str | None,
    store: Callable[[Session, Assessment, Any], tuple[int, Any]],
    *,
    missing_timepoint: str,
) -> ImportSummary:
    """Store every item or none: collect each item's problem, raise them together.

    ``items`` are ``(where, timepoint, subject, record)``; ``store`` is
    ``instruments.store.store_prom`` or ``store_toxicity``.
    """
    from instruments.errors import InstrumentError
    from instruments.store import Assessment

    summary = ImportSummary()
    problems: list[str] = []
    for where, own_timepoint, subject, record in items:
        timepoint = own_timepoint or default_timepoint
        if timepoint is None:
            problems.append(f"{where}: {missing_timepoint}")
            continue
        try:
            person_id, offset = patients.resolve(subject)
            _, outcome = store(
                session, Assessment(person_id, timepoint, offset), record
            )
        except (LookupError, InstrumentError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        summary.outcomes[outcome.value] += 1
        summary.person_ids.add(person_id)
    if problems:
        raise ImportFailedError(problems)
    return summary


def import_proms(
    session: Session,
    key: CentreKey,
    centre: str,
    path: Path,
    *,
    default_timepoint: str | None = None,
) -> ImportSummary:
    """Parse, validate and store every QuestionnaireResponse of a FHIR JSON file.

    Raises
    ------
    ImportFailedError
        Any problem in any resource; the caller rolls back.
    """
    from cohort.centres import get_centre
    from instruments.fhir import parse_questionnaire_responses
    from instruments.store import store_prom
    from omop.errors import RTCohortError

    try:
        responses: list[PromResponse] = parse_questionnaire_responses(
            path.read_bytes(), source=path.name
        )
        site = get_centre(session, centre)
    except OSError as exc:
        raise ImportFailedError([f"{path}: cannot read ({exc.strerror})"]) from None
    except RTCohortError as exc:
        raise ImportFailedError(getattr(exc, "problems", None) or [str(exc)]) from None
    summary = _store_all(
        session,
        _Patients(session, key, site.care_site_id),
        [
            (f"QuestionnaireResponse/{r.resource_id}", r.timepoint, r.subject, r)
            for r in responses
        ],
        default_timepoint,
        store_prom,
        missing_timepoint="no timepoint (extension or --timepoint)",
    )
    _audit(
        session,
        "prom.import",
        f"{len(responses)} questionnaire(s) from {path.name}",
        summary.person_ids,
    )
    return summary


def _read_gradings_csv(path: Path, text: str) -> list[ToxicityGrading]:
    from instruments.errors import InstrumentError
    from instruments.fhir import SubjectIdentifier
    from instruments.fhir_adverse_event import ToxicityGrading

    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportFailedError([f"{path}: missing column(s) {', '.join(missing)}"])
    gradings, problems = [], []
    for line, row in enumerate(reader, start=2):
        where = f"{path.name} line {line}"
        patient = (row.get("patient_id") or "").strip()
        if not patient:
            problems.append(f"{where} patient_id: empty")
            continue
        try:
            assessed_on = date.fromisoformat((row.get("assessed_on") or "").strip())
        except ValueError:
            problems.append(
                f"{where} assessed_on: {row.get('assessed_on')!r} is not a date"
                " (YYYY-MM-DD)"
            )
            continue
        try:
            gradings.append(
                ToxicityGrading(
                    resource_id=f"{path.name}:{line}",
                    subject=SubjectIdentifier(_CSV_SYSTEM, patient),
                    version=(row.get("ctcae_version") or "5.0").strip(),
                    term=(row.get("term") or "").strip(),
                    grade=(row.get("grade") or "").strip(),  # type: ignore[arg-type]
                    assessed_on=assessed_on,
                    attribution=(row.get("attribution") or "").strip() or None,
                    timepoint=(row.get("timepoint") or "").strip() or None,
                )
            )
        except InstrumentError as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise ImportFailedError(problems)
    return gradings


def import_toxicity(
    session: Session,
    key: CentreKey,
    centre: str,
    path: Path,
    *,
    default_timepoint: str | None = None,
) -> ImportSummary:
    """Parse, validate and store CTCAE gradings from a FHIR JSON or a CSV file.

    Raises
    ------
    ImportFailedError
        Any problem in any row or resource; the caller rolls back.
    """
    from cohort.centres import get_centre
    from instruments.fhir_adverse_event import parse_adverse_events
    from instruments.store import store_toxicity
    from omop.errors import RTCohortError

    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() == ".csv" or not text.lstrip().startswith("{"):
            gradings = _read_gradings_csv(path, text)
        else:
            gradings = parse_adverse_events(text, source=path.name)
        site = get_centre(session, centre)
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFailedError([f"{path}: cannot read ({exc})"]) from None
    except RTCohortError as exc:
        raise ImportFailedError(getattr(exc, "problems", None) or [str(exc)]) from None
    summary = _store_all(
        session,
        _Patients(session, key, site.care_site_id),
        [(g.resource_id, g.timepoint, g.subject, g) for g in gradings],
        default_timepoint,
        store_toxicity,
        missing_timepoint="no timepoint",
    )
    _audit(
        session,
        "toxicity.import",
        f"{len(gradings)} grading(s) from {path.name}",
        summary.person_ids,
    )
    return summary
