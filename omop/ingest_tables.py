"""Platform tables of DICOM-RT ingest (ARCHITECTURE.md sections 2 and 3).

Received objects and their versions, loaded datasets, the full differential DVHs and
the links of their metrics to OMOP rows, the quarantine, versioned structure-name
mapping rules and project trigger rules. The logic lives in ``etl``; this module only
declares storage. Every table that holds a person refers to ``person.person_id`` (or
holds the pseudonym in ``person_source_value``) so that erasure finds it.
"""

from __future__ import annotations

import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from omop.base import Base

__all__ = [
    "Dvh",
    "DvhMetric",
    "IngestDataset",
    "IngestObject",
    "MappingRule",
    "MappingRuleset",
    "ProjectTrigger",
    "QuarantineItem",
]

_TZ = DateTime(timezone=True)
_UID = 64


class IngestDataset(Base):
    """One loaded RT dataset: an RTDOSE with the plan, structure set and CT it uses.

    ``version`` grows each time a member object changes (a new version of an object
    with the same SOP Instance UID) and the dataset is loaded again.
    """

    __tablename__ = "ingest_dataset"

    dataset_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    dose_sop_instance_uid: Mapped[str] = mapped_column(
        String(_UID), nullable=False, unique=True
    )
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), nullable=False, index=True
    )
    care_site_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("care_site.care_site_id"), nullable=True
    )
    centre: Mapped[str] = mapped_column(String(20), nullable=False)
    study_instance_uid: Mapped[str] = mapped_column(String(_UID), nullable=False)
    frame_of_reference_uid: Mapped[str] = mapped_column(String(_UID), nullable=False)
    plan_sop_instance_uid: Mapped[str | None] = mapped_column(
        String(_UID), nullable=True
    )
    structure_set_sop_instance_uid: Mapped[str] = mapped_column(
        String(_UID), nullable=False
    )
    ct_series_instance_uid: Mapped[str | None] = mapped_column(
        String(_UID), nullable=True
    )
    dose_summation_type: Mapped[str] = mapped_column(String(16), nullable=False)
    episode_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("episode.episode_id"), nullable=True
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    content_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    warnings: Mapped[str] = mapped_column(Text, nullable=False)
    loaded_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)


class IngestObject(Base):
    """One version of a received DICOM object (pseudonymised, in the file store)."""

    __tablename__ = "ingest_object"
    __table_args__ = (
        UniqueConstraint("sop_instance_uid", "version"),
        UniqueConstraint("sop_instance_uid", "sha256"),
    )

    object_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    sop_instance_uid: Mapped[str] = mapped_column(String(_UID), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    sop_class_uid: Mapped[str] = mapped_column(String(_UID), nullable=False)
    modality: Mapped[str] = mapped_column(String(16), nullable=False)
    study_instance_uid: Mapped[str] = mapped_column(String(_UID), nullable=False)
    series_instance_uid: Mapped[str] = mapped_column(String(_UID), nullable=False)
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), nullable=False, index=True
    )
    current: Mapped[bool] = mapped_column(Boolean, nullable=False)
    received_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)


class Dvh(Base):
    """The full differential DVH of one structure in one dose grid.

    ``differential_cc`` holds ``n_bins`` little-endian float64 values (volume in cm3
    per bin of ``bin_width_gy``; bin ``b`` covers ``[b w, (b + 1) w)`` Gy), compressed
    with zlib. With the exact ``min_gy``/``mean_gy``/``max_gy`` it reproduces every
    metric the engine computes.
    """

    __tablename__ = "dvh"
    __table_args__ = (UniqueConstraint("dataset_id", "roi_number"),)

    dvh_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("ingest_dataset.dataset_id"), nullable=False
    )
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), nullable=False, index=True
    )
    image_occurrence_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("image_occurrence.image_occurrence_id"), nullable=False
    )
    roi_number: Mapped[int] = mapped_column(Integer, nullable=False)
    roi_name: Mapped[str] = mapped_column(String(64), nullable=False)
    interpreted_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    tg263_name: Mapped[str | None] = mapped_column(
        String(64), nullable=True, index=True
    )
    structure_concept_id: Mapped[int] = mapped_column(Integer, nullable=False)
    mapping_rule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    is_target: Mapped[bool] = mapped_column(Boolean, nullable=False)
    volume_cc: Mapped[float] = mapped_column(Float, nullable=False)
    outside_grid_cc: Mapped[float] = mapped_column(Float, nullable=False)
    min_gy: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_gy: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_gy: Mapped[float | None] = mapped_column(Float, nullable=True)
    bin_width_gy: Mapped[float] = mapped_column(Float, nullable=False)
    n_bins: Mapped[int] = mapped_column(Integer, nullable=False)
    differential_cc: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    engine: Mapped[str] = mapped_column(String(100), nullable=False)


class DvhMetric(Base):
    """Which IMAGE_FEATURE and MEASUREMENT hold which metric of which DVH."""

    __tablename__ = "dvh_metric"

    image_feature_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("image_feature.image_feature_id"),
        primary_key=True,
        autoincrement=False,
    )
    dvh_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("dvh.dvh_id"), nullable=False, index=True
    )
    measurement_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("measurement.measurement_id"), nullable=False
    )
    metric: Mapped[str] = mapped_column(String(50), nullable=False)
    alpha_beta_gy: Mapped[float | None] = mapped_column(Float, nullable=True)


class QuarantineItem(Base):
    """A held file with the reason (``etl.ingest.qa.Reason``).

    Nothing is dropped silently.
    """

    __tablename__ = "quarantine_item"
    __table_args__ = (
        Index("ix_quarantine_item_status_reason", "status", "reason_code"),
    )

    quarantine_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    path: Mapped[str] = mapped_column(Text, nullable=False)
    source_path: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    reason_code: Mapped[str] = mapped_column(String(40), nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    centre: Mapped[str] = mapped_column(String(20), nullable=False)
    pseudonymised: Mapped[bool] = mapped_column(Boolean, nullable=False)
    person_source_value: Mapped[str | None] = mapped_column(String(50), nullable=True)
    group_key: Mapped[str | None] = mapped_column(String(_UID), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    received_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
    resolved_at: Mapped[datetime.datetime | None] = mapped_column(_TZ, nullable=True)


class MappingRuleset(Base):
    """One imported version of the structure-name mapping rules."""

    __tablename__ = "mapping_ruleset"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(255), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    rule_count: Mapped[int] = mapped_column(Integer, nullable=False)
    imported_by: Mapped[str] = mapped_column(String(64), nullable=False)
    imported_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)


class MappingRule(Base):
    """A rule from a local ROI name to a TG-263 name (``centre`` NULL: global)."""

    __tablename__ = "mapping_rule"
    __table_args__ = (UniqueConstraint("version", "centre", "kind", "pattern"),)

    rule_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(
        Integer, ForeignKey("mapping_ruleset.version"), nullable=False, index=True
    )
    centre: Mapped[str | None] = mapped_column(String(20), nullable=True)
    pattern: Mapped[str] = mapped_column(String(1000), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    tg263_name: Mapped[str] = mapped_column(String(64), nullable=False)


class ProjectTrigger(Base):
    """A rule on DICOM attributes that attaches an arriving dataset to a project."""

    __tablename__ = "project_trigger"

    trigger_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True
    )
    project_code: Mapped[str] = mapped_column(String(50), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    keyword: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pattern: Mapped[str] = mapped_column(String(128), nullable=False)
    centre: Mapped[str | None] = mapped_column(String(20), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[datetime.datetime] = mapped_column(_TZ, nullable=False)
