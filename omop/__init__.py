"""Storage: OMOP CDM v5.4 models, migrations, vocabulary, sessions, bulk load, files."""

from __future__ import annotations

from omop.errors import RTCohortError

__all__ = ["RTCohortError"]
