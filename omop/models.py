"""Every table of the platform in one metadata: import this to see the whole schema."""

from __future__ import annotations

from omop import (
    assessment_tables,
    auth_tables,
    cdm,
    cohort_tables,
    ingest_tables,
    platform,
    read_indexes,
    summary_tables,
)
from omop.base import Base

__all__ = [
    "Base",
    "assessment_tables",
    "auth_tables",
    "cdm",
    "cohort_tables",
    "ingest_tables",
    "metadata",
    "platform",
    "read_indexes",
    "summary_tables",
]

metadata = Base.metadata
