"""Indexes for the dashboards' aggregate reads at national scale (0011-0015).

The CDM tables are generated from the OHDSI specification (:mod:`omop.cdm`), which
indexes single columns. The dashboard aggregations select dose metrics by structure
and metric (IMAGE_FEATURE), scale scores by scale (MEASUREMENT) and gradings by term
(OBSERVATION) over millions of rows, and the enrolled persons of a treatment site
(ENROLMENT); these composite indexes find them directly, and
on PostgreSQL cover the columns read (``INCLUDE``) so the aggregations are index-only
scans after ``VACUUM``. Declared here on the tables' metadata so that the models and
the migrations agree (``alembic check``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index

from omop.cdm import ImageFeature, Measurement, Observation
from omop.cohort_tables import Enrolment
from omop.ingest_tables import Dvh

__all__ = ["READ_INDEXES"]

#: name -> (table, key columns, PostgreSQL INCLUDE columns)
READ_INDEXES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "ix_image_feature_site_feature": (
        "image_feature",
        ("anatomic_site_concept_id", "image_feature_concept_id"),
        ("image_feature_event_id", "person_id"),
    ),
    "ix_measurement_source_field": (
        "measurement",
        ("measurement_source_concept_id", "meas_event_field_concept_id"),
        ("measurement_event_id", "value_as_number"),
    ),
    "ix_observation_source_type": (
        "observation",
        ("observation_source_concept_id", "observation_type_concept_id"),
        ("person_id", "observation_date", "value_as_number"),
    ),
    # migration 0012: the gradings of persons (CTCAE assessments by person and day,
    # completion by centre and visit) and the scores of questionnaires (by event)
    "ix_observation_type_person": (
        "observation",
        ("observation_type_concept_id", "person_id"),
        (
            "observation_source_concept_id",
            "observation_date",
            "value_as_number",
            "visit_occurrence_id",
        ),
    ),
    "ix_measurement_event_field": (
        "measurement",
        ("measurement_event_id", "meas_event_field_concept_id"),
        ("measurement_source_concept_id", "value_as_number"),
    ),
    # migration 0013: the structures of persons (the completeness pages count the
    # ROIs per person and structure set without reading the wide DVH rows); 0014
    # covers ``dvh_id`` too: the DVH band joins the chosen curves to their samples
    "ix_dvh_name_person": (
        "dvh",
        ("tg263_name", "person_id"),
        ("dataset_id", "roi_number", "dvh_id"),
    ),
    # migration 0015: the case-mix read of the outcome funnel (the ages at course
    # start by their course, the stages by person, the enrolled persons of a site)
    "ix_observation_source_field": (
        "observation",
        ("observation_source_concept_id", "obs_event_field_concept_id"),
        ("observation_event_id", "value_as_number"),
    ),
    "ix_measurement_source_person": (
        "measurement",
        ("measurement_source_concept_id", "person_id"),
        (),
    ),
    "ix_enrolment_site_state": (
        "enrolment",
        ("treatment_site", "state"),
        ("person_id", "care_site_id"),
    ),
}

_MODELS: dict[str, Any] = {
    "dvh": Dvh,
    "enrolment": Enrolment,
    "image_feature": ImageFeature,
    "measurement": Measurement,
    "observation": Observation,
}

for _name, (_table, _keys, _include) in READ_INDEXES.items():
    _columns = _MODELS[_table].__table__.c
    Index(_name, *(_columns[k] for k in _keys), postgresql_include=list(_include))
