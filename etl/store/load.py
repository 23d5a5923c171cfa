"""Load a computed RT dataset into OMOP (ARCHITECTURE.md section 3), idempotently.

One call of :func:`load_dataset` writes, in the caller's transaction:

- PERSON (``person_source_value`` = pseudonym) and CARE_SITE of the centre if missing;
- the RT course EPISODE (start and planned end), its PROCEDURE and prescription
  (:mod:`etl.store.course`) and the age at its start (:mod:`etl.store.course_age`);
- one IMAGE_OCCURRENCE per series and the object versions (:mod:`etl.store.images`);
- per structure the full differential DVH and per metric one IMAGE_FEATURE +
  MEASUREMENT pair (:mod:`etl.store.dvh_rows`), and the DVH's sampled cumulative
  curves, physical and EQD2 (:mod:`etl.store.dvh_samples`).

A dataset whose content changed (a new version of a member object) replaces its DVHs
and metrics; the course and images are kept. A dataset without a readable study date
is not loaded (:class:`~etl.store.course.NoStudyDateError`). :func:`remap_loaded`
(:mod:`etl.mapping.remap`, re-exported here) re-maps loaded structures and rewrites
changed metrics from the stored DVHs.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from etl.dicom.enums import DoseSummationType
from etl.dicom.index import ResolvedDataset
from etl.mapping.naming import RuleSet
from etl.mapping.remap import RemapReport, remap_loaded
from etl.store.computed import ComputedDataset, content_hash
from etl.store.course import (
    NoStudyDateError,
    dicom_day,
    study_day,
    write_course,
    write_prescription,
)
from etl.store.course_age import write_course_age
from etl.store.dvh_rows import (
    AlphaBeta,
    MetricContext,
    delete_metrics,
    write_dvh_rows,
    write_metrics,
)
from etl.store.dvh_samples import delete_dvh_samples, write_dvh_samples
from etl.store.images import write_images, write_objects
from omop.cdm import CareSite, Episode, Person
from omop.filestore import FileStore
from omop.ingest_tables import Dvh, IngestDataset
from omop.observation_period import extend_observation_period
from omop.vocab.lookup import field_concept_id

__all__ = ["LoadResult", "RemapReport", "load_dataset", "remap_loaded"]


@dataclass
class LoadResult:
    """What one load wrote."""

    dataset_id: int
    person_id: int
    episode_id: int
    version: int
    structures: int
    metrics: int
    unmapped: list[str]


def _care_site(session: Session, centre: str) -> CareSite:
    site = session.scalar(
        select(CareSite).where(CareSite.care_site_source_value == centre)
    )
    if site is None:
        site = CareSite(care_site_source_value=centre, care_site_name=centre)
        session.add(site)
        session.flush()
    return site


def _person(session: Session, pseudonym: str, care_site_id: int) -> Person:
    person = session.scalar(
        select(Person).where(Person.person_source_value == pseudonym)
    )
    if person is None:
        # Consent registration normally creates the person (with year of birth and sex);
        # without it the birth year is unknown (DICOM de-identification empties it).
        person = Person(
            person_source_value=pseudonym,
            gender_concept_id=0,
            year_of_birth=0,
            race_concept_id=0,
            ethnicity_concept_id=0,
            care_site_id=care_site_id,
        )
        session.add(person)
        session.flush()
    return person


def _extend_period(
    session: Session,
    person_id: int,
    episode_id: int,
    resolved: ResolvedDataset,
    day: datetime.date,
) -> None:
    """Widen the person's OBSERVATION_PERIOD to the course, its images and metrics."""
    episode = session.get(Episode, episode_id)
    end = episode.episode_end_date if episode is not None else None
    days = [day, *(d for o in resolved.members() if (d := dicom_day(o.study_date)))]
    extend_observation_period(
        session, person_id, min(days), max([*days, *([end] if end else [])])
    )


def load_dataset(
    session: Session,
    computed: ComputedDataset,
    *,
    centre: str,
    store: FileStore,
    rules: RuleSet,
    alpha_beta: AlphaBeta | None = None,
) -> LoadResult:
    """Load (or re-load) one computed dataset; the caller owns the transaction.

    Raises
    ------
    NoStudyDateError
        The dataset has no readable study date (nothing is written).
    """
    resolved = computed.resolved
    now = datetime.datetime.now(datetime.UTC)
    day = study_day(resolved)
    if day is None:
        raise NoStudyDateError(
            f"RTDOSE {resolved.dose.sop_instance_uid}: no readable StudyDate "
            "(dose or plan); the RT course start would be unknown"
        )
    site = _care_site(session, centre)
    person = _person(session, resolved.patient_id, site.care_site_id)
    dataset = session.scalar(
        select(IngestDataset).where(
            IngestDataset.dose_sop_instance_uid == resolved.dose.sop_instance_uid
        )
    )
    if dataset is not None:
        old = list(
            session.scalars(
                select(Dvh.dvh_id).where(Dvh.dataset_id == dataset.dataset_id)
            )
        )
        delete_metrics(session, old)
        delete_dvh_samples(session, old)
        session.execute(delete(Dvh).where(Dvh.dataset_id == dataset.dataset_id))
    episode_id, procedure_id = write_course(session, person.person_id, computed, day)
    write_prescription(session, person.person_id, episode_id, computed, day)
    write_course_age(session, person.person_id, episode_id, computed, day)
    images = write_images(session, person.person_id, procedure_id, resolved, store, day)
    write_objects(session, person.person_id, resolved, store, now)
    assert resolved.structure_set is not None
    warnings = json.dumps([f.as_dict() for f in computed.findings], ensure_ascii=False)
    if dataset is None:
        dataset = IngestDataset(
            dose_sop_instance_uid=resolved.dose.sop_instance_uid, version=0
        )
        session.add(dataset)
    dataset.person_id = person.person_id
    dataset.care_site_id = site.care_site_id
    dataset.centre = centre
    dataset.study_instance_uid = resolved.dose.study_instance_uid
    dataset.frame_of_reference_uid = resolved.dose.frame_of_reference_uid
    dataset.plan_sop_instance_uid = resolved.course_key
    dataset.structure_set_sop_instance_uid = resolved.structure_set.sop_instance_uid
    dataset.ct_series_instance_uid = (
        resolved.ct[0].series_instance_uid if resolved.ct else None
    )
    dataset.dose_summation_type = (
        resolved.dose.dose_summation_type[:16] or DoseSummationType.PLAN
    )
    dataset.episode_id = episode_id
    dataset.version = dataset.version + 1
    dataset.content_sha256 = content_hash(resolved)
    dataset.warnings = warnings
    dataset.loaded_at = now
    session.flush()

    stored, unmapped = write_dvh_rows(
        session,
        dataset_id=dataset.dataset_id,
        person_id=person.person_id,
        image_occurrence_id=images[resolved.dose.series_instance_uid],
        centre=centre,
        structures=computed.structures,
        rules=rules,
    )
    write_dvh_samples(session, stored, computed.n_fractions)
    ctx = MetricContext(
        person_id=person.person_id,
        day=day,
        fractions=computed.n_fractions,
        alpha_beta=alpha_beta or AlphaBeta(),
        metric_field=field_concept_id(session, "measurement.measurement_id"),
        feature_field=field_concept_id(session, "image_feature.image_feature_id"),
        now=now,
    )
    n_metrics = write_metrics(session, stored if computed.compute_metrics else [], ctx)
    _extend_period(session, person.person_id, episode_id, resolved, day)
    return LoadResult(
        dataset_id=dataset.dataset_id,
        person_id=person.person_id,
        episode_id=episode_id,
        version=dataset.version,
        structures=len(stored),
        metrics=n_metrics,
        unmapped=unmapped,
    )
