"""Free-text notes of a CTCAE grading: one NOTE row per saved note, and its reader.

A clinician's note on a toxicity assessment is OMOP ``note`` (type Case Report Form,
``note_title`` :data:`GRADING_NOTE_TITLE`, ``note_source_value`` the timepoint code,
``visit_occurrence_id`` the timepoint visit, ``note_date`` shifted like every date).
The text is stored as typed; showing it escaped is the reader's job. Notes are never
updated: a later note is a new row, so the earlier text stays readable. Kept out of
:mod:`instruments.store.toxicity` (the grade rows) to leave that module's size alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from instruments.store.common import (
    NO_CONCEPT,
    Assessment,
    StoreError,
    check_plausible_date,
    visit_for,
)
from omop.cdm import Note, VisitOccurrence
from omop.observation_period import extend_observation_period
from omop.vocab.standard import CASE_REPORT_FORM

__all__ = [
    "GRADING_NOTE_TITLE",
    "MAX_NOTE_CHARS",
    "GradingNote",
    "read_grading_notes",
    "store_grading_note",
]

GRADING_NOTE_TITLE = "CTCAE grading note"
MAX_NOTE_CHARS = 4000


@dataclass(frozen=True)
class GradingNote:
    """One stored note (``written_on`` as stored, i.e. shifted)."""

    note_id: int
    timepoint: str
    written_on: date
    text: str


def store_grading_note(
    session: Session, where: Assessment, text: str, written_on: date
) -> int:
    """Store a note on the person's timepoint; return the NOTE id.

    Raises
    ------
    StoreError
        A blank or over-long text (over :data:`MAX_NOTE_CHARS`), or an implausible
        date (:func:`~instruments.store.common.check_plausible_date`).
    """
    if not text.strip():
        raise StoreError("note: empty")
    if len(text) > MAX_NOTE_CHARS:
        raise StoreError(f"note: longer than {MAX_NOTE_CHARS} characters")
    check_plausible_date(session, where, written_on, "note date")
    day = where.shift(written_on)
    note = Note(
        person_id=where.person_id,
        note_date=day,
        note_type_concept_id=CASE_REPORT_FORM,
        note_class_concept_id=NO_CONCEPT,
        note_title=GRADING_NOTE_TITLE,
        note_text=text,
        encoding_concept_id=NO_CONCEPT,
        language_concept_id=NO_CONCEPT,
        visit_occurrence_id=visit_for(session, where, day),
        note_source_value=where.timepoint,
    )
    session.add(note)
    session.flush()
    extend_observation_period(session, where.person_id, day)
    return int(note.note_id)


def read_grading_notes(session: Session, person_id: int) -> list[GradingNote]:
    """Return the person's grading notes, oldest first."""
    rows = session.execute(
        select(
            Note.note_id,
            VisitOccurrence.visit_source_value,
            Note.note_date,
            Note.note_text,
        )
        .join(
            VisitOccurrence,
            VisitOccurrence.visit_occurrence_id == Note.visit_occurrence_id,
        )
        .where(Note.person_id == person_id, Note.note_title == GRADING_NOTE_TITLE)
        .order_by(Note.note_id)
    ).all()
    return [GradingNote(int(i), str(tp), d, str(x)) for i, tp, d, x in rows]
