"""Platform tables that OMOP has no place for (ARCHITECTURE.md section 3).

Named without OMOP prefixes and kept in the same metadata and migrations as the CDM.
Later features add their own tables in modules beside this one.
"""

from __future__ import annotations

import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omop.base import Base

__all__ = ["ConceptMapPending", "StoredFile", "StoredFileOwner"]


class ConceptMapPending(Base):
    """A ``Maps to`` of one of our concepts into a standard vocabulary, by code.

    The target's concept_id is only known once Athena is loaded (we never invent ids
    of standard concepts); ``rtcohort vocab load-athena`` turns each row into
    CONCEPT_RELATIONSHIP rows and re-points ``*_concept_id`` zeros.
    """

    __tablename__ = "concept_map_pending"

    source_concept_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("concept.concept_id"), primary_key=True, autoincrement=False
    )
    relationship_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    target_vocabulary_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    target_concept_code: Mapped[str] = mapped_column(String(50), primary_key=True)


class StoredFile(Base):
    """A file in the content-addressed store (``omop.filestore``)."""

    __tablename__ = "stored_file"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    stored_at: Mapped[datetime.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False
    )


class StoredFileOwner(Base):
    """Which person a stored file belongs to, so that erasure can remove it."""

    __tablename__ = "stored_file_owner"

    sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("stored_file.sha256"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), primary_key=True, autoincrement=False
    )
