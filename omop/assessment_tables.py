"""Platform table of assessment versions: corrections kept, not overwritten.

A PROM or CTCAE grading corrected after it was stored keeps its OMOP rows; the
correction is stored as new rows and this table links the versions: which OMOP row
holds each version, why it was made, by whom and when, and which version superseded
it. Readers in :mod:`instruments.store` leave out the rows of superseded versions. An
assessment never corrected has no row here (its OMOP rows are its only version).
"""

from __future__ import annotations

import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omop.base import Base

__all__ = ["AssessmentVersion"]


class AssessmentVersion(Base):
    """One version of a corrected assessment.

    ``kind`` is ``prom`` (``row_id`` = SURVEY_CONDUCT id) or ``toxicity`` (``row_id``
    = the grade OBSERVATION id, ``condition_occurrence_id`` its CONDITION_OCCURRENCE
    for grade >= 1). ``assessment_key`` names the assessment (PROM: the questionnaire
    id; toxicity: the CTCAE term and the shifted assessment date). Version 1 is the
    original row: its ``reason``, ``actor`` and ``recorded_at`` are empty (recorded
    before versioning started).
    """

    __tablename__ = "assessment_version"
    __table_args__ = (Index(None, "kind", "row_id", unique=True),)

    version_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), nullable=False, index=True
    )
    assessment_key: Mapped[str] = mapped_column(String(255), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    row_id: Mapped[int] = mapped_column(Integer, nullable=False)
    condition_occurrence_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recorded_at: Mapped[datetime.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    superseded_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("assessment_version.version_id"), nullable=True
    )
