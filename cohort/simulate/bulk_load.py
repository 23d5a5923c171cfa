"""``rtcohort simulate --into-db`` at scale: owners' row builders + the bulk loader.

:func:`load_cohort_bulk` writes the same rows as the per-row writers of
:mod:`cohort.simulate.load` (the rows come from the same builders,
:mod:`cohort.simulate.bulk_rows`), but a batch of patients at a time: each batch is
one transaction whose rows are written table by table with PostgreSQL ``COPY``
(:mod:`omop.bulk`) or one SQLite ``executemany`` per table; on PostgreSQL the next
batch is built while the last ones are written (:data:`WRITERS` at once). A build
that is killed loses at most the batches in flight, never part of a patient;
a re-run skips the patients already present (by pseudonym) and loads the rest.
"""

from __future__ import annotations

import datetime
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from cohort.simulate.bulk_ids import IdBlock, write_rows
from cohort.simulate.bulk_rows import Fields, Rows, patient_rows
from cohort.simulate.load import LoadCounts, centre_for
from cohort.simulate.national import NationalCohort
from etl.deid.identity import identify
from etl.deid.keys import CentreKey
from etl.mapping.naming import RuleSet, current_rules, ensure_default_rules
from instruments.store.prom_summary import refresh_prom_summary
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
from omop.summary_tables import DvhSampled
from omop.vocab.lookup import field_concept_id

__all__ = ["WRITE_ORDER", "load_cohort_bulk"]

#: Tables in the order their rows are written (foreign keys first).
WRITE_ORDER: tuple[type[DeclarativeBase], ...] = (
    Person, Enrolment, ConsentEvent, ObservationPeriod, Death, Episode,
    ProcedureOccurrence, EpisodeEvent, VisitOccurrence, ConditionOccurrence,
    SurveyConduct, ImageOccurrence, StoredFile, StoredFileOwner, IngestObject,
    IngestDataset, Dvh, DvhSampled, Measurement, Observation, ImageFeature,
    DvhMetric,
)  # fmt: skip

Progress = Callable[[str, int, int], None]

#: Batches written at once on PostgreSQL (each by its own thread and transaction):
#: one, as a second did not help on 2 cores (the builder and the server use them).
WRITERS = 1


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


@dataclass(frozen=True)
class _Setup:
    """What every batch of a load shares."""

    keys: Mapping[str, CentreKey]
    store: FileStore
    rules: RuleSet
    seed: int
    fields: Fields
    centres: Mapping[str, int]
    counts: LoadCounts


def _build(
    session: Session, patients: Sequence[object], ids: IdBlock, setup: _Setup
) -> Rows:
    """Build the rows of the batch's new patients (keys taken in ``session``)."""
    keys, counts = setup.keys, setup.counts
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
            rows, patient, identity, setup.centres[patient.centre],  # type: ignore[arg-type, attr-defined]
            seed=setup.seed, store=setup.store, rules=setup.rules, fields=setup.fields,
            counts=counts,
        )  # fmt: skip
    return rows


def _write(session: Session, rows: Rows, store: FileStore) -> None:
    """Write a batch's rows (and its files' rows) in ``session``'s transaction."""
    store.sync()  # the placeholders were stored without a flush each
    _file_rows(rows, store, session)
    for model in WRITE_ORDER:
        write_rows(session, model, rows.tables.get(str(model.__tablename__), []))
    surveyed = {int(r["person_id"]) for r in rows.tables.get("survey_conduct", [])}
    if surveyed:
        refresh_prom_summary(session, surveyed)  # as store_prom does per person


def _write_batch(
    session_factory: sessionmaker[Session], rows: Rows, store: FileStore
) -> None:
    with session_factory.begin() as session:
        _write(session, rows, store)


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
    setup = _Setup(
        keys, store, rules, cohort.params.seed, fields, centres, counts
    )  # fmt: skip
    patients = cohort.patients
    batches = [patients[i : i + batch] for i in range(0, len(patients), batch)]
    with session_factory() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        _pipelined(session_factory, batches, setup, progress, len(patients))
        return counts
    ids = IdBlock()
    done = 0
    for chunk in batches:
        with session_factory.begin() as session:
            _write(session, _build(session, chunk, ids, setup), store)
        done += len(chunk)
        if progress is not None:
            progress("into-db", done, len(patients))
    return counts


def _pipelined(
    session_factory: sessionmaker[Session],
    batches: Sequence[Sequence[object]],
    setup: _Setup,
    progress: Progress | None,
    total: int,
) -> None:
    """PostgreSQL: build the next batch while writer threads write the last ones.

    The server's share of a batch (``COPY``, its indexes and foreign-key checks)
    overlaps the building of the next one; up to :data:`WRITERS` batches are written
    at once, each in its own transaction (their rows share no keys: the keys come from
    the sequences, which any session may take, in the same order as one batch after
    the other). A failure stops the load once the batches in flight are done.
    """
    ids = IdBlock()
    done = 0
    pending: deque[tuple[Future[None], int]] = deque()

    def finish(keep: int) -> None:
        nonlocal done
        while len(pending) > keep:
            future, size = pending.popleft()
            future.result()
            done += size
            if progress is not None:
                progress("into-db", done, total)

    with ThreadPoolExecutor(WRITERS, thread_name_prefix="into-db") as writer:
        for chunk in batches:
            with session_factory() as session:
                rows = _build(session, chunk, ids, setup)
            finish(WRITERS - 1)
            future = writer.submit(_write_batch, session_factory, rows, setup.store)
            pending.append((future, len(chunk)))
        finish(0)
