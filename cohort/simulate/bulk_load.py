"""``rtcohort simulate --into-db`` at scale: owners' row builders + the bulk loader.

:func:`load_cohort_bulk` writes the same rows as the per-row writers of
:mod:`cohort.simulate.load` (the rows come from the same builders,
:mod:`cohort.simulate.bulk_rows`), but a batch of patients at a time: each batch is
one transaction whose rows are written table by table with PostgreSQL ``COPY``
(:mod:`omop.bulk`) or one SQLite ``executemany`` per table. A build that is killed
loses at most the batch in flight, never part of a patient; a re-run skips the
patients already present (by pseudonym) and loads the rest.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from cohort.simulate.bulk_ids import IdBlock, write_rows
from cohort.simulate.bulk_rows import Fields, Rows, patient_rows
from cohort.simulate.load import LoadCounts, centre_for
from cohort.simulate.national import NationalCohort
from etl.deid.identity import identify
from etl.deid.keys import CentreKey
from etl.mapping.naming import RuleSet, current_rules, ensure_default_rules
from omop.cdm import (
    ConditionOccurrence,
    Death,
    Episode,
    EpisodeEvent,
    ImageFeature,
    ImageOccurrence,
    Measurement,
    Observation,
    ObservationPeriod,
    Person,
    ProcedureOccurrence,
    SurveyConduct,
    VisitOccurrence,
)
from omop.cohort_tables import ConsentEvent, Enrolment
from omop.filestore import FileStore
from omop.ingest_tables import Dvh, DvhMetric, IngestDataset, IngestObject
from omop.platform import StoredFile, StoredFileOwner
from omop.vocab.lookup import field_concept_id

__all__ = ["WRITE_ORDER", "load_cohort_bulk"]

#: Tables in the order their rows are written (foreign keys first).
WRITE_ORDER: tuple[type[DeclarativeBase], ...] = (
    Person, Enrolment, ConsentEvent, ObservationPeriod, Death, Episode,
    ProcedureOccurrence, EpisodeEvent, VisitOccurrence, ConditionOccurrence,
    SurveyConduct, ImageOccurrence, StoredFile, StoredFileOwner, IngestObject,
    IngestDataset, Dvh, Measurement, Observation, ImageFeature, DvhMetric,
)  # fmt: skip

Progress = Callable[[str, int, int], None]


def _fields(session: Session) -> Fields:
    return Fields(
        episode=field_concept_id(session, "episode.episode_id"),
        procedure=field_concept_id(
            session, "procedure_occurrence.procedure_occurrence_id"
        ),
        measurement=field_concept_id(session, "measurement.measurement_id"),
        image_feature=field_concept_id(session, "image_feature.image_feature_id"),
        condition=field_concept_id(
            session, "condition_occurrence.condition_occurrence_id"
        ),
        survey=field_concept_id(session, "survey_conduct.survey_conduct_id"),
    )


def _file_rows(rows: Rows, store: FileStore, session: Session) -> None:
    """stored_file and stored_file_owner rows of the batch's new files."""
    hashes = sorted({sha for sha, _ in rows.files})
    known = set(
        session.scalars(select(StoredFile.sha256).where(StoredFile.sha256.in_(hashes)))
    )
    rows.tables["stored_file"] = [
        {"sha256": sha, "size_bytes": store.path(sha).stat().st_size,
         "stored_at": rows.now}
        for sha in hashes if sha not in known
    ]  # fmt: skip
    rows.tables["stored_file_owner"] = [
        {"sha256": sha, "person_id": pid} for sha, pid in sorted(set(rows.files))
    ]


def _batch(
    session: Session,
    patients: list[object],
    ids: IdBlock,
    *,
    keys: Mapping[str, CentreKey],
    store: FileStore,
    rules: RuleSet,
    seed: int,
    fields: Fields,
    centres: Mapping[str, int],
    counts: LoadCounts,
) -> None:
    ids.begin(session)
    rows = Rows(ids, datetime.datetime.now(datetime.UTC))
    who = [identify(keys[p.centre], p.hospital_id) for p in patients]  # type: ignore[attr-defined]
    present = set(
        session.scalars(
            select(Person.person_source_value).where(
                Person.person_source_value.in_([w.pseudonym for w in who])
            )
        )
    )
    for patient, identity in zip(patients, who, strict=True):
        if identity.pseudonym in present:
            counts.skipped += 1
            continue
        patient_rows(
            rows, patient, identity, centres[patient.centre],  # type: ignore[arg-type, attr-defined]
            seed=seed, store=store, rules=rules, fields=fields, counts=counts,
        )  # fmt: skip
    store.sync()  # the placeholders were stored without a flush each
    _file_rows(rows, store, session)
    for model in WRITE_ORDER:
        write_rows(session, model, rows.tables.get(str(model.__tablename__), []))


def load_cohort_bulk(
    session_factory: sessionmaker[Session],
    cohort: NationalCohort,
    *,
    keys: Mapping[str, CentreKey],
    store: FileStore,
    batch: int = 200,
    progress: Progress | None = None,
) -> LoadCounts:
    """Load every patient, one transaction per ``batch`` whole patients.

    Parameters
    ----------
    session_factory
        Sessions of the target database (migrated).
    cohort
        The simulated cohort.
    keys
        The centres' keys (pseudonyms and date offsets, as on import).
    store
        The file store (the objects' placeholders).
    batch
        Patients per transaction.
    progress
        ``(step, done, total)`` callback.

    Returns
    -------
    LoadCounts
        What was written (and how many patients were present already).
    """
    counts = LoadCounts()
    with session_factory.begin() as session:
        ensure_default_rules(session)
        centres = {
            code: int(centre_for(session, code).care_site_id)
            for code in sorted({p.centre for p in cohort.patients})
        }
        fields = _fields(session)
    with session_factory() as session:
        rules = current_rules(session)
    ids = IdBlock()
    patients = cohort.patients
    for start in range(0, len(patients), batch):
        with session_factory.begin() as session:
            _batch(
                session, list(patients[start : start + batch]), ids, keys=keys,
                store=store, rules=rules, seed=cohort.params.seed, fields=fields,
                centres=centres, counts=counts,
            )  # fmt: skip
        if progress is not None:
            progress("into-db", min(start + batch, len(patients)), len(patients))
    return counts
