"""Platform table of assessment versions: the history of corrected assessments.

The OMOP clinical tables hold only the current version of each PROM and CTCAE
grading, so that every OHDSI tool reading them (ATLAS, Achilles, the quality checks)
sees one version. When an assessment is corrected, the earlier version's OMOP rows are
removed and kept here as a snapshot (every column of every row, per table), with the
reason, actor and time of the correction and the version number
(:mod:`instruments.store.versions`). An assessment never corrected has no row here
(its OMOP rows are its only version).
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omop.base import Base

__all__ = ["AssessmentVersion"]


class AssessmentVersion(Base):
    """One version of a corrected assessment.

    ``kind`` is ``prom`` (``row_id`` = SURVEY_CONDUCT id) or ``toxicity`` (``row_id``
    = the grade OBSERVATION id, ``condition_occurrence_id`` its CONDITION_OCCURRENCE
    for grade >= 1); for a superseded version these are the ids its rows had in OMOP.
    ``assessment_key`` names the assessment (PROM: the questionnaire id; toxicity:
    ``CTCAE v<version> <MedDRA code> <timepoint>``). Version 1 is the original: its
    ``reason``, ``actor`` and ``recorded_at`` are empty (recorded before versioning
    started). ``snapshot`` is empty for the current version (its rows are in OMOP)
    and, for a superseded one, ``{table: [{column: value}, ...]}`` of the rows removed
    from OMOP (dates and times as ISO 8601 text).
    """

    __tablename__ = "assessment_version"
    __table_args__ = (
        Index(None, "kind", "person_id", "assessment_key", "version", unique=True),
    )

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
    snapshot: Mapped[dict[str, list[dict[str, Any]]] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
