"""CDM_SOURCE: the one row that tells an OHDSI tool what this database is.

Written by ``rtcohort db upgrade`` (:func:`write_cdm_source`, name from the setting
``RTCOHORT_CDM_SOURCE_NAME``): CDM version ``v5.4``, the vocabulary version (the
Athena release when one is loaded, else the seed's), the release dates.
"""

from __future__ import annotations

import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from omop.cdm import CdmSource, Concept, Vocabulary
from omop.vocab.seed import SEED_VERSION

__all__ = ["CDM_VERSION", "write_cdm_source"]

#: The CDM version of the schema (``cdm_source.cdm_version``).
CDM_VERSION = "v5.4"
_CDM_VERSION_CONCEPT_NAME = "OMOP CDM Version 5.4"
_ETL_REFERENCE = "rtcohort (omop.database.upgrade; docs/omop.md)"


def _vocabulary_version(session: Session) -> str:
    """Return the Athena release (VOCABULARY 'None') if loaded, else the seed's."""
    athena = session.scalar(
        select(Vocabulary.vocabulary_version).where(
            Vocabulary.vocabulary_id == "None",
            Vocabulary.vocabulary_version.is_not(None),
            Vocabulary.vocabulary_version.not_like("rtcohort seed%"),
        )
    )
    return str(athena or SEED_VERSION)[:20]


def write_cdm_source(
    session: Session, name: str, today: datetime.date | None = None
) -> CdmSource:
    """Write (or refresh) the one CDM_SOURCE row; idempotent.

    ``cdm_release_date`` is the day the row was first written (the CDM instance was
    created); ``source_release_date`` the day of the newest upgrade.
    ``cdm_version_concept_id`` is the CDM-vocabulary concept of v5.4 when a loaded
    vocabulary holds it (by name), else 0: its id is not verified in two sources.

    Parameters
    ----------
    session
        Open session; the caller owns the transaction.
    name
        ``cdm_source_name`` (setting ``RTCOHORT_CDM_SOURCE_NAME``).
    today
        The upgrade day (default: today, UTC).

    Raises
    ------
    ValueError
        An empty name.
    """
    name = name.strip()
    if not name:
        raise ValueError("cdm_source name (RTCOHORT_CDM_SOURCE_NAME) is empty")
    today = today or datetime.datetime.now(datetime.UTC).date()
    rows = list(session.scalars(select(CdmSource)))
    created = min((r.cdm_release_date for r in rows), default=today)
    if rows:
        session.execute(delete(CdmSource))
        session.flush()
    version_concept = session.scalar(
        select(Concept.concept_id).where(
            Concept.vocabulary_id == "CDM",
            Concept.concept_name == _CDM_VERSION_CONCEPT_NAME,
        )
    )
    row = CdmSource(
        cdm_source_name=name[:255],
        cdm_source_abbreviation=name[:25],
        cdm_holder=name[:255],
        source_description="Prospective radiotherapy outcome cohort (rtcohort): "
        "pseudonymised DICOM-RT dose, CTCAE toxicity and EORTC QLQ-C30 PROMs",
        source_documentation_reference="docs/omop.md",
        cdm_etl_reference=_ETL_REFERENCE,
        source_release_date=today,
        cdm_release_date=created,
        cdm_version=CDM_VERSION,
        cdm_version_concept_id=int(version_concept or 0),
        vocabulary_version=_vocabulary_version(session),
    )
    session.add(row)
    session.flush()
    return row
