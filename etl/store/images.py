"""The images and object versions of a loaded dataset.

One IMAGE_OCCURRENCE per series (CT, RTSTRUCT, RTPLAN, RTDOSE), ``local_path`` in the
content-addressed file store, ``modality_concept_id`` from :data:`MODALITY_CONCEPTS`
(:func:`write_images`); one ``ingest_object`` row per
version of a member object, with the files' owner registered in the store
(:func:`write_objects`).
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etl.dicom.index import IndexedObject, ResolvedDataset
from etl.store.course import dicom_day
from omop.cdm import ImageOccurrence
from omop.filestore import FileStore
from omop.ingest_tables import IngestObject
from omop.vocab.standard import COMPUTED_TOMOGRAPHY

__all__ = ["MODALITY_CONCEPTS", "write_images", "write_objects"]

#: ``modality_concept_id`` of a series by DICOM Modality. RTSTRUCT, RTPLAN and
#: RTDOSE have no standard concept verified in two sources: 0 (docs/omop.md).
MODALITY_CONCEPTS: dict[str, int] = {"CT": COMPUTED_TOMOGRAPHY}


def write_images(  # noqa: PLR0917
    session: Session,
    person_id: int,
    procedure_id: int,
    resolved: ResolvedDataset,
    store: FileStore,
    day: datetime.date,
) -> dict[str, int]:
    """Return {series uid: image_occurrence_id}, creating the missing ones."""
    series: dict[str, IndexedObject] = {}
    for obj in resolved.members():
        series.setdefault(obj.series_instance_uid, obj)
    found = dict(
        session.execute(
            select(
                ImageOccurrence.image_series_uid, ImageOccurrence.image_occurrence_id
            ).where(
                ImageOccurrence.person_id == person_id,
                ImageOccurrence.image_series_uid.in_(list(series)),
            )
        ).all()
    )
    for uid, obj in series.items():
        if uid in found:
            continue
        row = ImageOccurrence(**image_row(person_id, procedure_id, obj, day, store))
        session.add(row)
        session.flush()
        found[uid] = row.image_occurrence_id
    return found


def image_row(
    person_id: int,
    procedure_id: int,
    obj: IndexedObject,
    day: datetime.date,
    store: FileStore,
) -> dict[str, Any]:
    """Return the IMAGE_OCCURRENCE row of the series of ``obj`` (one per series)."""
    return {
        "person_id": person_id,
        "procedure_occurrence_id": procedure_id,
        "local_path": str(store.path(obj.sha256)),
        "image_occurrence_date": dicom_day(obj.study_date) or day,
        "image_study_uid": obj.study_instance_uid,
        "image_series_uid": obj.series_instance_uid,
        "modality_concept_id": MODALITY_CONCEPTS.get(str(obj.modality), 0),
    }


def write_objects(
    session: Session,
    person_id: int,
    resolved: ResolvedDataset,
    store: FileStore,
    now: datetime.datetime,
) -> None:
    """Record the member objects' versions; register new files' owner."""
    members = {o.sop_instance_uid: o for o in resolved.members()}
    existing: dict[str, list[IngestObject]] = {}
    uids = list(members)
    for start in range(0, len(uids), 500):
        for row in session.scalars(
            select(IngestObject).where(
                IngestObject.sop_instance_uid.in_(uids[start : start + 500])
            )
        ):
            existing.setdefault(row.sop_instance_uid, []).append(row)
    new_files: list[tuple[str, int | None]] = []
    for uid, obj in members.items():
        versions = existing.get(uid, [])
        if any(v.sha256 == obj.sha256 for v in versions):
            for v in versions:
                v.current = v.sha256 == obj.sha256
            continue
        for v in versions:
            v.current = False
        new_files.append((obj.sha256, person_id))
        session.add(
            IngestObject(
                sop_instance_uid=uid,
                version=1 + max((v.version for v in versions), default=0),
                sha256=obj.sha256,
                sop_class_uid=obj.sop_class_uid,
                modality=obj.modality,
                study_instance_uid=obj.study_instance_uid,
                series_instance_uid=obj.series_instance_uid,
                person_id=person_id,
                current=True,
                received_at=now,
            )
        )
    store.register_many(session, new_files)
    session.flush()
