"""The OMOP rows of one simulated patient, for the bulk ``--into-db`` path.

:func:`patient_rows` builds, into a :class:`Rows` of one batch, exactly the rows
:func:`cohort.simulate.load.load_patient` writes through the owners' writers:
consent (PERSON, enrolment, consent events, the stage; :mod:`cohort.consent`,
:mod:`cohort.stage`), the RT dataset
(course, prescription, age, images, objects, DVHs and metrics: the row builders of
:mod:`etl.store`), toxicity and PROMs (:mod:`instruments.store.rows`), death or last
contact (:mod:`cohort.vital`), withdrawal, and the OBSERVATION_PERIOD as the union of
what each writer extends it to (:mod:`omop.observation_period`).
"""

from __future__ import annotations

import datetime
from typing import Any

from cohort.consent_states import ConsentState, Sex
from cohort.simulate.bulk_dataset import dataset_rows
from cohort.simulate.bulk_ids import Fields, Period, Rows
from cohort.simulate.load import LoadCounts, outcome_records
from cohort.simulate.national import NationalPatient
from cohort.stage import stage_row
from cohort.vital import DEATH_TYPE_CONCEPT_ID
from etl.deid.identity import PatientIdentity
from etl.mapping.naming import RuleSet
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
    Measurement,
    Observation,
    ObservationPeriod,
    Person,
    SurveyConduct,
    VisitOccurrence,
)
from omop.cohort_tables import ConsentEvent
from omop.filestore import FileStore
from omop.observation_period import PERIOD_TYPE_CONCEPT_ID
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import (
    FEMALE,
    MALE,
)

__all__ = ["Fields", "Rows", "patient_rows"]

Row = dict[str, Any]
_ACTOR = "simulator"


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


def _outcomes(
    rows: Rows,
    patient: NationalPatient,
    who: PatientIdentity,
    person_id: int,
    *,
    fields: Fields,
    period: Period,
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
    period = Period(approached)
    if patient.consented:
        period = Period(decided)  # restart_observation_period at consent
        if patient.stage is not None:
            rows.add(Measurement, stage_row(person_id, patient.stage, decided),
                     "measurement_id")  # fmt: skip
        period.extend(*_span(dataset_rows(
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


def _span(period: Period) -> tuple[datetime.date, datetime.date]:
    return period.start, period.end


def _vital(  # noqa: PLR0917
    rows: Rows,
    patient: NationalPatient,
    who: PatientIdentity,
    person_id: int,
    enrolment: Row,
    period: Period,
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
