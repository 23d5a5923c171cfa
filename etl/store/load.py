"""Load a computed RT dataset into OMOP (ARCHITECTURE.md section 3), idempotently.

One call of :func:`load_dataset` writes, in the caller's transaction:

- PERSON (``person_source_value`` = pseudonym) and CARE_SITE of the centre if missing;
- the RT course EPISODE (start and planned end), its PROCEDURE and prescription
  (:mod:`etl.store.course`) and the age at its start (:mod:`etl.store.course_age`);
- one IMAGE_OCCURRENCE per series and the object versions (:mod:`etl.store.images`);
- per structure the full differential DVH and per metric one IMAGE_FEATURE +
  MEASUREMENT pair (:mod:`etl.store.dvh_rows`).

A dataset whose content changed (a new version of a member object) replaces its DVHs
and metrics; the course and images are kept. A dataset without a readable study date
is not loaded (:class:`~etl.store.course.NoStudyDateError`). :func:`remap_loaded`
re-maps loaded structures and rewrites changed metrics from the stored DVHs.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from etl.dicom.enums import DoseSummationType
from etl.dicom.index import ResolvedDataset
from etl.dose.dvh import DVH
from etl.mapping.naming import RuleSet, is_target, structure_concept_id
from etl.store.computed import ComputedDataset, content_hash
from etl.store.course import (
    NoStudyDateError,
    dicom_day,
    episode_fractions,
    study_day,
    write_course,
    write_prescription,
)
from etl.store.course_age import write_course_age
from etl.store.dvh_rows import (
    AlphaBeta,
    MetricContext,
    delete_metrics,
    dvh_from_row,
    write_dvh_rows,
    write_metrics,
)
from etl.store.images import write_images, write_objects
from omop.cdm import CareSite, Episode, Person
from omop.filestore import FileStore
from omop.ingest_tables import Dvh, DvhMetric, IngestDataset
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


@dataclass
class RemapReport:
    """What re-mapping loaded structures changed."""

    structures_checked: int = 0
    structures_changed: int = 0
    metrics_rewritten: int = 0


def remap_loaded(
    session: Session, rules: RuleSet, *, alpha_beta: AlphaBeta | None = None
) -> RemapReport:
    """Re-map loaded structures with ``rules``; recompute changed ones from the DVH.

    No DICOM is read: metrics of a structure whose TG-263 name changed are rewritten
    from its stored differential DVH.
    """
    report = RemapReport()
    metric_field = field_concept_id(session, "measurement.measurement_id")
    feature_field = field_concept_id(session, "image_feature.image_feature_id")
    now = datetime.datetime.now(datetime.UTC)
    rows = session.execute(
        select(
            Dvh,
            IngestDataset.centre,
            IngestDataset.episode_id,
            IngestDataset.dose_summation_type,
        )
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .order_by(Dvh.dataset_id, Dvh.roi_number)
    ).all()
    changed: dict[int, list[tuple[Dvh, DVH]]] = {}
    episodes: dict[int, int | None] = {}
    for row, centre, episode_id, _summation in rows:
        report.structures_checked += 1
        mapped = rules.map(row.roi_name, centre)
        new_target = is_target(mapped.tg263_name, row.interpreted_type)
        rule_id = mapped.rule.rule_id if mapped.rule else None
        if (mapped.tg263_name, new_target) == (row.tg263_name, row.is_target):
            if row.mapping_rule_id != rule_id:
                row.mapping_rule_id = rule_id
            continue
        report.structures_changed += 1
        row.tg263_name = mapped.tg263_name
        row.structure_concept_id = structure_concept_id(mapped.tg263_name)
        row.mapping_rule_id = rule_id
        row.is_target = new_target
        episodes[row.dataset_id] = episode_id
        changed.setdefault(row.dataset_id, []).append((row, dvh_from_row(row)))
    session.flush()
    for dataset_id, items in changed.items():
        has_metrics = session.scalar(
            select(func.count())
            .select_from(DvhMetric)
            .join(Dvh, Dvh.dvh_id == DvhMetric.dvh_id)
            .where(Dvh.dataset_id == dataset_id)
        )
        delete_metrics(session, [r.dvh_id for r, _ in items])
        if not has_metrics:
            continue
        episode_id = episodes[dataset_id]
        first = items[0][0]
        day = (
            session.scalar(
                select(Episode.episode_start_date).where(
                    Episode.episode_id == episode_id
                )
            )
            or now.date()
        )
        ctx = MetricContext(
            person_id=first.person_id,
            day=day,
            fractions=episode_fractions(session, episode_id) if episode_id else None,
            alpha_beta=alpha_beta or AlphaBeta(),
            metric_field=metric_field,
            feature_field=feature_field,
            now=now,
        )
        report.metrics_rewritten += write_metrics(session, items, ctx)
    return report
