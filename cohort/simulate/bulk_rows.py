"""The OMOP rows of one simulated patient, for the bulk ``--into-db`` path.

:func:`patient_rows` builds, into a :class:`Rows` of one batch, exactly the rows
:func:`cohort.simulate.load.load_patient` writes through the owners' writers:
consent (PERSON, enrolment, consent events; :mod:`cohort.consent`), the RT dataset
(course, prescription, age, images, objects, DVHs and metrics: the row builders of
:mod:`etl.store`), toxicity and PROMs (:mod:`instruments.store.rows`), death or last
contact (:mod:`cohort.vital`), withdrawal, and the OBSERVATION_PERIOD as the union of
what each writer extends it to (:mod:`omop.observation_period`).
"""

from __future__ import annotations

import datetime
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import DeclarativeBase

from cohort.consent_states import ConsentState, Sex
from cohort.simulate.bulk_ids import IdBlock
from cohort.simulate.load import LoadCounts, computed_dataset, outcome_records
from cohort.simulate.national import NationalPatient
from cohort.vital import DEATH_TYPE_CONCEPT_ID
from etl.deid.identity import PatientIdentity
from etl.dicom.enums import DoseSummationType
from etl.mapping.naming import RuleSet
from etl.store.computed import content_hash
from etl.store.course import course_end, dicom_day, prescription_rows, study_day
from etl.store.course_age import course_age_row, course_age_years
from etl.store.dvh_rows import AlphaBeta, MetricContext, dvh_row, metric_rows
from instruments.shortlists import TreatmentSite
from instruments.store import Assessment
from instruments.store.rows import (
    prom_value_rows,
    score_prom,
    survey_row,
    toxicity_condition_row,
    toxicity_observation_row,
    visit_row,
)
from omop.cdm import (
    ConditionOccurrence,
    Episode,
    ImageOccurrence,
    Measurement,
    Observation,
    ObservationPeriod,
    Person,
    ProcedureOccurrence,
    SurveyConduct,
    VisitOccurrence,
)
from omop.cohort_tables import ConsentEvent
from omop.filestore import FileStore
from omop.ingest_tables import Dvh, IngestDataset, IngestObject
from omop.observation_period import PERIOD_TYPE_CONCEPT_ID
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import (
    DISEASE_EPISODE,
    EHR,
    FEMALE,
    MALE,
    NO_MATCHING_CONCEPT,
    RT_COURSE_EPISODE,
)

__all__ = ["Fields", "Rows", "patient_rows"]

Row = dict[str, Any]
_ACTOR = "simulator"


@dataclass(frozen=True)
class Fields:
    """Field concepts of the ``*_event_id`` links (looked up once per load)."""

    episode: int
    procedure: int
    measurement: int
    image_feature: int
    condition: int
    survey: int


@dataclass
class Rows:
    """Rows of one batch, by table, in the order they are written."""

    ids: IdBlock
    now: datetime.datetime
    tables: dict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))
    files: list[tuple[str, int]] = field(default_factory=list)

    def add(
        self, model: type[DeclarativeBase], row: Row, key: str | None = None
    ) -> int:
        """Add a row (with a new key in column ``key``); return the key (or 0)."""
        new = 0
        if key is not None:
            new = self.ids.take(model)
            row = {key: new, **row}
        self.tables[str(model.__tablename__)].append(row)
        return new


class _Period:
    """The union of the intervals the slow path's writers extend the period to."""

    def __init__(self, start: datetime.date) -> None:
        self.start = self.end = start

    def extend(self, start: datetime.date, end: datetime.date | None = None) -> None:
        self.start = min(self.start, start)
        self.end = max(self.end, start, end or start)


def _consent_event(
    rows: Rows,
    person_id: int,
    care_site_id: int,
    state: ConsentState,
    day: datetime.date,
) -> None:
    scope = state is ConsentState.CONSENTED
    rows.add(
        ConsentEvent,
        {
            "person_id": person_id, "care_site_id": care_site_id,
            "state": state.value,
            "state_concept_id": our_concept_id("RTC Consent", state.value),
            "consent_version": None, "event_date": day, "scope_data": scope,
            "scope_proms": scope, "scope_linkage": scope, "recorded_by": _ACTOR,
            "recorded_at": rows.now,
        },
        "consent_event_id",
    )  # fmt: skip


def _dataset(
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
) -> _Period:
    computed = computed_dataset(patient, who, seed, store)
    resolved = computed.resolved
    day = study_day(resolved)
    assert day is not None
    assert resolved.structure_set is not None
    end = course_end(computed, day)
    disease = rows.add(
        Episode,
        {
            "person_id": person_id, "episode_concept_id": DISEASE_EPISODE,
            "episode_start_date": day,
            "episode_object_concept_id": NO_MATCHING_CONCEPT,
            "episode_type_concept_id": EHR,
            "episode_source_value": "cancer treated with radiotherapy",
        },
        "episode_id",
    )  # fmt: skip
    course_concept = our_concept_id("RTC Course", "rt_course")
    episode = rows.add(
        Episode,
        {
            "person_id": person_id, "episode_parent_id": disease,
            "episode_concept_id": RT_COURSE_EPISODE, "episode_start_date": day,
            "episode_end_date": end, "episode_object_concept_id": 0,
            "episode_type_concept_id": EHR,
            "episode_source_value": (computed.plan_label or "RT course")[:50],
            "episode_source_concept_id": course_concept,
        },
        "episode_id",
    )  # fmt: skip
    procedure = rows.add(
        ProcedureOccurrence,
        {
            "person_id": person_id, "procedure_concept_id": 0,
            "procedure_date": day, "procedure_end_date": end,
            "procedure_type_concept_id": EHR,
            "procedure_source_value": "radiotherapy course",
            "procedure_source_concept_id": course_concept,
            "quantity": computed.n_fractions,
        },
        "procedure_occurrence_id",
    )  # fmt: skip
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
                {
                    "person_id": person_id, "procedure_occurrence_id": procedure,
                    "local_path": str(store.path(obj.sha256)),
                    "image_occurrence_date": dicom_day(obj.study_date) or day,
                    "image_study_uid": obj.study_instance_uid,
                    "image_series_uid": obj.series_instance_uid,
                    "modality_concept_id": 0,
                },
                "image_occurrence_id",
            )  # fmt: skip
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
    measurements, features, links = metric_rows(stored, ctx, rows.ids.many)
    rows.tables["measurement"] += measurements
    rows.tables["image_feature"] += features
    rows.tables["dvh_metric"] += links
    counts.datasets += 1
    counts.structures += len(stored)
    counts.metrics += len(links)
    days = [day, *(d for o in resolved.members() if (d := dicom_day(o.study_date)))]
    period = _Period(min(days))
    period.extend(min(days), max([*days, *([end] if end else [])]))
    return period


def _outcomes(
    rows: Rows,
    patient: NationalPatient,
    who: PatientIdentity,
    person_id: int,
    *,
    fields: Fields,
    period: _Period,
) -> tuple[int, int]:
    offset = who.date_offset_days or 0
    visits: dict[str, int] = {}
    gradings, responses = outcome_records(patient, who)

    def visit(where: Assessment, day: datetime.date) -> int:
        if where.timepoint not in visits:
            visits[where.timepoint] = rows.add(
                VisitOccurrence, visit_row(where, day), "visit_occurrence_id"
            )
        period.extend(day)
        return visits[where.timepoint]

    for grading in gradings:
        assert grading.timepoint is not None
        where = Assessment(person_id, grading.timepoint, offset)
        day = where.shift(grading.assessed_on)
        visit_id = visit(where, day)
        condition = condition_field = None
        if grading.grade > 0:
            row = toxicity_condition_row(grading, where, day)
            row["visit_occurrence_id"] = visit_id
            condition = rows.add(ConditionOccurrence, row, "condition_occurrence_id")
            condition_field = fields.condition
        row = toxicity_observation_row(
            grading, where, day, condition_id=condition, condition_field=condition_field
        )
        row["visit_occurrence_id"] = visit_id
        rows.add(Observation, row, "observation_id")
    for response in responses:
        assert response.timepoint is not None
        assert response.authored is not None
        where = Assessment(person_id, response.timepoint, offset)
        scored = score_prom(response)
        moment = where.shift_datetime(response.authored)
        received = response.authored
        if isinstance(received, datetime.datetime):
            received = received.date()
        day = where.shift(received)
        visit_id = visit(where, day)
        row = survey_row(
            scored, response, where, day=day, moment=moment, collection_method="FHIR"
        )
        row["visit_occurrence_id"] = visit_id
        survey = rows.add(SurveyConduct, row, "survey_conduct_id")
        answers, scores = prom_value_rows(
            scored, where, day=day, moment=moment, survey_id=survey,
            visit_id=visit_id, field=fields.survey,
        )  # fmt: skip
        for answer in answers:
            rows.add(Observation, answer, "observation_id")
        for score in scores:
            rows.add(Measurement, score, "measurement_id")
    return len(gradings), len(responses)


def patient_rows(
    rows: Rows,
    patient: NationalPatient,
    who: PatientIdentity,
    care_site_id: int,
    *,
    seed: int,
    store: FileStore,
    rules: RuleSet,
    fields: Fields,
    counts: LoadCounts,
) -> None:
    """Add every row of one (new) patient to ``rows``."""
    approached = who.shift(patient.consent_date - datetime.timedelta(7))
    decided = who.shift(patient.consent_date)
    sex = Sex(patient.sex.upper())
    person_id = rows.add(
        Person,
        {
            "person_source_value": who.pseudonym,
            "gender_concept_id": {Sex.F: FEMALE, Sex.M: MALE}[sex],
            "gender_source_value": sex.value, "year_of_birth": patient.year_of_birth,
            "race_concept_id": 0, "ethnicity_concept_id": 0,
            "care_site_id": care_site_id,
        },
        "person_id",
    )  # fmt: skip
    counts.persons += 1
    _consent_event(rows, person_id, care_site_id, ConsentState.APPROACHED, approached)
    final = ConsentState.CONSENTED if patient.consented else ConsentState.DECLINED
    _consent_event(rows, person_id, care_site_id, final, decided)
    enrolment: Row = {
        "person_id": person_id, "care_site_id": care_site_id,
        "treatment_site": TreatmentSite(patient.site).value,
        "protocol_code": "default", "state": final.value, "consent_version": None,
        "scope_data": patient.consented, "scope_proms": patient.consented,
        "scope_linkage": patient.consented, "first_record_date": approached,
        "consented_date": decided if patient.consented else None,
        "last_contact_date": None,
    }  # fmt: skip
    rows.tables["enrolment"].append(enrolment)
    period = _Period(approached)
    if patient.consented:
        period = _Period(decided)  # restart_observation_period at consent
        period.extend(*_span(_dataset(
            rows, patient, who, person_id, care_site_id, seed=seed, store=store,
            rules=rules, fields=fields, counts=counts,
        )))  # fmt: skip
        n_tox, n_prom = _outcomes(
            rows, patient, who, person_id, fields=fields, period=period
        )
        counts.gradings += n_tox
        counts.questionnaires += n_prom
        _vital(rows, patient, who, person_id, enrolment, period, counts)
    else:
        period.extend(approached, decided)
    rows.add(
        ObservationPeriod,
        {
            "person_id": person_id, "observation_period_start_date": period.start,
            "observation_period_end_date": period.end,
            "period_type_concept_id": PERIOD_TYPE_CONCEPT_ID,
        },
        "observation_period_id",
    )  # fmt: skip


def _span(period: _Period) -> tuple[datetime.date, datetime.date]:
    return period.start, period.end


def _vital(  # noqa: PLR0917
    rows: Rows,
    patient: NationalPatient,
    who: PatientIdentity,
    person_id: int,
    enrolment: Row,
    period: _Period,
    counts: LoadCounts,
) -> None:
    consented = enrolment["consented_date"]
    if patient.died_on is not None and (
        patient.withdrawn_on is None or patient.died_on < patient.withdrawn_on
    ):
        day = who.shift(patient.died_on)
        rows.tables["death"].append(
            {"person_id": person_id, "death_date": day,
             "death_type_concept_id": DEATH_TYPE_CONCEPT_ID}
        )  # fmt: skip
        counts.deaths += 1
    else:
        day = who.shift(patient.last_contact)
    enrolment["last_contact_date"] = day
    period.extend(consented, day)
    if patient.withdrawn_on is not None:
        withdrawn = who.shift(patient.withdrawn_on)
        _consent_event(
            rows,
            person_id,
            enrolment["care_site_id"],
            ConsentState.WITHDRAWN,
            withdrawn,
        )
        enrolment.update(
            state=ConsentState.WITHDRAWN.value, scope_data=False, scope_proms=False,
            scope_linkage=False,
        )  # fmt: skip
        period.extend(enrolment["first_record_date"], withdrawn)
