"""The RT dataset rows of one simulated patient (bulk ``--into-db`` path).

:func:`dataset_rows` builds what :func:`etl.store.load.load_dataset` writes for a new
dataset: course EPISODE (with its disease EPISODE), PROCEDURE and EPISODE_EVENT,
prescription and age (:mod:`etl.store.course`, :mod:`etl.store.course_age`),
IMAGE_OCCURRENCE per series, object versions, the dataset row, the DVHs and the
dose metrics (:func:`etl.store.dvh_rows.dvh_row`,
:func:`~etl.store.dvh_rows.metric_rows`) and the DVHs' sampled curves
(:func:`etl.store.dvh_samples.sampled_rows`).
"""

from __future__ import annotations

import json

from cohort.simulate.bulk_ids import Fields, Period, Rows
from cohort.simulate.load import LoadCounts, computed_dataset
from cohort.simulate.national import NationalPatient
from etl.deid.identity import PatientIdentity
from etl.dicom.enums import DoseSummationType
from etl.mapping.naming import RuleSet
from etl.store.computed import content_hash
from etl.store.course import (
    course_end,
    course_episode_row,
    course_procedure_row,
    dicom_day,
    disease_episode_row,
    prescription_rows,
    study_day,
)
from etl.store.course_age import course_age_row, course_age_years
from etl.store.dvh_rows import AlphaBeta, MetricContext, dvh_row, metric_rows
from etl.store.dvh_samples import sampled_rows
from etl.store.images import image_row
from omop.cdm import (
    Episode,
    ImageOccurrence,
    Measurement,
    Observation,
    ProcedureOccurrence,
)
from omop.filestore import FileStore
from omop.ingest_tables import Dvh, IngestDataset, IngestObject

__all__ = ["dataset_rows"]


def dataset_rows(
    rows: Rows,
    patient: NationalPatient,
    who: PatientIdentity,
    person_id: int,
    care_site_id: int,
    *,
    seed: int,
    store: FileStore,
    rules: RuleSet,
    fields: Fields,
    counts: LoadCounts,
) -> Period:
    """Add the rows of the patient's RT dataset; return the span they cover."""
    computed = computed_dataset(patient, who, seed, store, durable=False)
    resolved = computed.resolved
    day = study_day(resolved)
    assert day is not None
    assert resolved.structure_set is not None
    end = course_end(computed, day)
    disease = rows.add(Episode, disease_episode_row(person_id, day), "episode_id")
    episode = rows.add(
        Episode,
        course_episode_row(person_id, disease, computed, day),
        "episode_id",
    )
    procedure = rows.add(
        ProcedureOccurrence,
        course_procedure_row(person_id, computed, day),
        "procedure_occurrence_id",
    )
    rows.tables["episode_event"].append(
        {"episode_id": episode, "event_id": procedure,
         "episode_event_field_concept_id": fields.procedure}
    )  # fmt: skip
    for row in prescription_rows(person_id, episode, computed, day, fields.episode):
        rows.add(Measurement, row, "measurement_id")
    years = course_age_years(resolved)
    if years is not None:
        age = course_age_row(person_id, episode, years, day, fields.episode)
        rows.add(Observation, age, "observation_id")
    images: dict[str, int] = {}
    for obj in resolved.members():
        if obj.series_instance_uid not in images:
            images[obj.series_instance_uid] = rows.add(
                ImageOccurrence,
                image_row(person_id, procedure, obj, day, store),
                "image_occurrence_id",
            )
    for obj in {o.sop_instance_uid: o for o in resolved.members()}.values():
        rows.files.append((obj.sha256, person_id))
        rows.add(
            IngestObject,
            {
                "sop_instance_uid": obj.sop_instance_uid, "version": 1,
                "sha256": obj.sha256, "sop_class_uid": obj.sop_class_uid,
                "modality": obj.modality,
                "study_instance_uid": obj.study_instance_uid,
                "series_instance_uid": obj.series_instance_uid,
                "person_id": person_id, "current": True, "received_at": rows.now,
            },
            "object_id",
        )  # fmt: skip
    dataset = rows.add(
        IngestDataset,
        {
            "dose_sop_instance_uid": resolved.dose.sop_instance_uid,
            "person_id": person_id, "care_site_id": care_site_id,
            "centre": patient.centre,
            "study_instance_uid": resolved.dose.study_instance_uid,
            "frame_of_reference_uid": resolved.dose.frame_of_reference_uid,
            "plan_sop_instance_uid": resolved.course_key,
            "structure_set_sop_instance_uid":
                resolved.structure_set.sop_instance_uid,
            "ct_series_instance_uid": None,
            "dose_summation_type":
                resolved.dose.dose_summation_type[:16] or DoseSummationType.PLAN,
            "episode_id": episode, "version": 1,
            "content_sha256": content_hash(resolved),
            "warnings": json.dumps([f.as_dict() for f in computed.findings]),
            "loaded_at": rows.now,
        },
        "dataset_id",
    )  # fmt: skip
    stored = []
    for s in computed.structures:
        dvh, _ = dvh_row(s, rules, patient.centre)
        dvh.dataset_id, dvh.person_id = dataset, person_id
        dvh.image_occurrence_id = images[resolved.dose.series_instance_uid]
        dvh.dvh_id = rows.ids.take(Dvh)
        rows.tables["dvh"].append(
            {c.key: getattr(dvh, c.key) for c in Dvh.__table__.columns}
        )
        stored.append((dvh, s.dvh))
    ctx = MetricContext(
        person_id=person_id, day=day, fractions=computed.n_fractions,
        alpha_beta=AlphaBeta(), metric_field=fields.measurement,
        feature_field=fields.image_feature, now=rows.now,
    )  # fmt: skip
    rows.tables["dvh_sampled"] += sampled_rows(
        [(int(d.dvh_id), person_id, dvh) for d, dvh in stored], computed.n_fractions
    )
    measurements, features, links = metric_rows(stored, ctx, rows.ids.many)
    rows.tables["measurement"] += measurements
    rows.tables["image_feature"] += features
    rows.tables["dvh_metric"] += links
    counts.datasets += 1
    counts.structures += len(stored)
    counts.metrics += len(links)
    days = [day, *(d for o in resolved.members() if (d := dicom_day(o.study_date)))]
    period = Period(min(days))
    period.extend(min(days), max([*days, *([end] if end else [])]))
    return period
