"""One RT patient loaded through the production path (DICOM import, then consent)."""

from __future__ import annotations

import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort.centres import add_centre
from cohort.consent import record_consent
from etl.deid.pseudonymise import pseudonym
from etl.ingest.run import run_import
from omop import cdm
from tests.etl.ingest_corpus import write_patient
from tests.etl.ingest_db import KEY, Db

#: Consent to data use, before the phantom's treatment.
CONSENT_DAY = datetime.date(2020, 1, 6)


def course_of(s: Session, pid: int) -> cdm.Episode:
    """The RT course EPISODE (32940) of a person."""
    return s.scalars(
        select(cdm.Episode).where(
            cdm.Episode.person_id == pid, cdm.Episode.episode_concept_id == 32940
        )
    ).one()


def load_patient(db: Db, folder: Path, patient_id: str, seed: int) -> int:
    """Enrol one patient (consent with year of birth and sex), import its phantom.

    Returns the person_id. The order is the clinic's: consent, then the DICOM import
    meets the same person through the keyed pseudonym.
    """
    name = pseudonym(KEY, patient_id)
    with db.factory.begin() as s:
        site = s.scalar(
            select(cdm.CareSite).where(cdm.CareSite.care_site_source_value == "TST01")
        ) or add_centre(s, "TST01")
        record_consent(
            s,
            centre=site,
            pseudonym=name,
            state="consented",
            event_date=CONSENT_DAY,
            actor="test",
            year_of_birth=1958,
            sex="F",
        )
    write_patient(folder, patient_id, seed)
    summary = run_import(db.factory, [folder], db.options())
    assert summary.loaded == 1
    with db.factory() as s:
        return int(
            s.scalars(
                select(cdm.Person.person_id).where(
                    cdm.Person.person_source_value == name
                )
            ).one()
        )
