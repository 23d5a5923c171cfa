"""Write a simulated cohort into OMOP through the convention owners' writers.

For scale (``rtcohort simulate --into-db``): no files are written; each patient goes in
through the functions that own its rows:

- centre: :func:`cohort.centres.add_centre`; consent (approached, then consented or
  declined; withdrawn later for some): :func:`cohort.consent.record_consent`;
- the RT dataset: :func:`etl.store.load.load_dataset` (course, prescription, age,
  image rows, DVHs and metrics, the metrics through :mod:`omop.bulk`) on the DVHs
  of :mod:`cohort.simulate.dose`, for a dataset described by the UIDs the
  ``--dicom`` files of the same seed carry (:func:`etl.phantom.write.phantom_uids`);
  each object is stored as a small JSON placeholder (the DICOM is not written);
- toxicity and PROMs: :func:`instruments.store.store_toxicity`,
  :func:`instruments.store.store_prom`;
- death and last contact: :mod:`cohort.vital`.

Pseudonyms and date offsets come from the centres' keys
(:func:`etl.deid.identity.identify`), as on import. Each patient is written whole or
not at all (a savepoint); a patient whose person exists already is skipped, so a
re-run after an interruption loads only what is missing. The caller owns the
transaction and commits between batches.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cohort.centres import add_centre
from cohort.consent import ConsentState, find_person, record_consent
from cohort.simulate.national import NationalPatient
from cohort.simulate.outcomes import timepoint_date
from cohort.vital import record_death, record_last_contact
from etl.deid.identity import PatientIdentity, identify
from etl.deid.keys import CentreKey
from etl.dicom.enums import DoseSummationType
from etl.dicom.index import DoseRole, IndexedObject, ResolvedDataset
from etl.mapping.naming import RuleSet
from etl.phantom.write import phantom_uids
from etl.store.computed import ComputedDataset, ComputedStructure
from etl.store.load import load_dataset
from instruments.fhir import PSEUDONYM_SYSTEM, PromResponse, SubjectIdentifier
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.store import Assessment, store_prom, store_toxicity
from omop.cdm import CareSite
from omop.filestore import FileStore

__all__ = [
    "LoadCounts",
    "centre_for",
    "computed_dataset",
    "load_patient",
    "outcome_records",
]

_ACTOR = "simulator"
_RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
_RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
_RT_STRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
_NOTE = (
    "written by rtcohort simulate --into-db instead of the DICOM object; "
    "--dicom with the same seed writes the object with this UID"
)


@dataclass
class LoadCounts:
    """What a load wrote (accumulated over patients)."""

    persons: int = 0
    skipped: int = 0
    datasets: int = 0
    structures: int = 0
    metrics: int = 0
    gradings: int = 0
    questionnaires: int = 0
    deaths: int = 0


def _placeholder(
    store: FileStore, uid: str, modality: str, pseudonym: str, *, durable: bool
) -> str:
    """Store the small JSON that stands for an object not written; return its hash."""
    text = json.dumps(
        {"simulated": True, "modality": modality, "sop_instance_uid": uid,
         "patient": pseudonym, "note": _NOTE},
        sort_keys=True,
    )  # fmt: skip
    return store.put(text.encode(), durable=durable)


def _resolved(
    patient: NationalPatient,
    who: PatientIdentity,
    seed: int,
    store: FileStore,
    *,
    durable: bool,
) -> ResolvedDataset:
    uids = phantom_uids(seed, patient.hospital_id)
    assert who.date_offset_days is not None
    day = who.shift(patient.rt_start).strftime("%Y%m%d")
    age = f"{patient.rt_start.year - patient.year_of_birth:03d}Y"

    def obj(
        modality: str, sop_class: str, uid: str, series: str, **kw: object
    ) -> IndexedObject:
        return IndexedObject(
            path="", sha256=_placeholder(
                store, uid, modality, who.pseudonym, durable=durable
            ),
            modality=modality, sop_class_uid=sop_class,
            sop_instance_uid=uid, study_instance_uid=uids["study_uid"],
            series_instance_uid=series, frame_of_reference_uid=uids["for_uid"],
            patient_id=who.pseudonym, study_date=day, patient_age=age,
            **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    plan = obj(
        "RTPLAN", _RT_PLAN, uids["rtplan_uid"], uids["rp_series"],
        referenced_structure_set_uids=(uids["rtstruct_uid"],),
        plan_label=patient.schedule.label, plan_intent="CURATIVE",
    )  # fmt: skip
    dose = obj(
        "RTDOSE", _RT_DOSE, uids["rtdose_uid"], uids["rd_series"],
        referenced_plan_uids=(uids["rtplan_uid"],),
        dose_summation_type=DoseSummationType.PLAN,
    )  # fmt: skip
    structures = obj(
        "RTSTRUCT", _RT_STRUCT, uids["rtstruct_uid"], uids["rs_series"],
        roi_names=tuple(s.roi_name for s in patient.structures),
    )  # fmt: skip
    return ResolvedDataset(
        dose=dose, role=DoseRole.PLAN, plans=[plan], structure_set=structures
    )


def _consent(
    session: Session, centre: CareSite, patient: NationalPatient, who: PatientIdentity
) -> int:
    states = [(ConsentState.APPROACHED, patient.consent_date - datetime.timedelta(7))]
    final = ConsentState.CONSENTED if patient.consented else ConsentState.DECLINED
    states.append((final, patient.consent_date))
    event = None
    for state, day in states:
        event = record_consent(
            session, centre=centre, pseudonym=who.pseudonym, state=state,
            event_date=who.shift(day), actor=_ACTOR,
            year_of_birth=patient.year_of_birth, sex=patient.sex, site=patient.site,
        )  # fmt: skip
    assert event is not None
    return int(event.person_id)


def outcome_records(
    patient: NationalPatient, who: PatientIdentity
) -> tuple[list[ToxicityGrading], list[PromResponse]]:
    """Return the patient's CTCAE gradings and QLQ-C30 responses, as received."""
    subject = SubjectIdentifier(PSEUDONYM_SYSTEM, who.pseudonym)
    gradings = [
        ToxicityGrading(
            resource_id=f"sim-{who.pseudonym}-{term}-{tp}"[:64],
            subject=subject,
            version="5.0",
            term=term,
            grade=grade,
            assessed_on=timepoint_date(patient.rt_start, patient.rt_end, tp),
            timepoint=tp,
        )
        for term, grades in patient.grades.items()
        for tp, grade in grades.items()
    ]
    responses = [
        PromResponse(
            resource_id=f"sim-{who.pseudonym}-qlq-c30-{tp}",
            instrument="QLQ-C30",
            subject=subject,
            authored=timepoint_date(patient.rt_start, patient.rt_end, tp),
            values=dict(answers),
            timepoint=tp,
        )
        for tp, answers in patient.proms.items()
    ]
    return gradings, responses


def _outcomes(
    session: Session, person_id: int, patient: NationalPatient, who: PatientIdentity
) -> tuple[int, int]:
    offset = who.date_offset_days or 0
    gradings, responses = outcome_records(patient, who)
    for grading in gradings:
        assert grading.timepoint is not None
        store_toxicity(
            session, Assessment(person_id, grading.timepoint, offset), grading
        )
    for response in responses:
        assert response.timepoint is not None
        store_prom(session, Assessment(person_id, response.timepoint, offset), response)
    return len(gradings), len(responses)


def computed_dataset(
    patient: NationalPatient,
    who: PatientIdentity,
    seed: int,
    store: FileStore,
    *,
    durable: bool = True,
) -> ComputedDataset:
    """Return the patient's RT dataset as computed on import (placeholders stored).

    ``durable=False`` stores the placeholders without a flush each: the caller
    calls ``store.sync()`` before any row refers to them (:meth:`FileStore.put`).
    """
    return ComputedDataset(
        resolved=_resolved(patient, who, seed, store, durable=durable),
        structures=[
            ComputedStructure(s.roi_number, s.roi_name, s.interpreted_type, s.dvh)
            for s in patient.structures
        ],
        n_fractions=patient.schedule.fractions,
        course_fractions=patient.schedule.fractions,
        prescription_gy=patient.schedule.dose_gy,
        plan_intent="CURATIVE",
        plan_label=patient.schedule.label,
    )


def load_patient(
    session: Session,
    patient: NationalPatient,
    *,
    keys: Mapping[str, CentreKey],
    store: FileStore,
    rules: RuleSet,
    seed: int,
    counts: LoadCounts,
) -> bool:
    """Write one patient (whole, in a savepoint); False when already present."""
    who = identify(keys[patient.centre], patient.hospital_id)
    if find_person(session, who.pseudonym) is not None:
        counts.skipped += 1
        return False
    with session.begin_nested():
        centre = centre_for(session, patient.centre)
        person_id = _consent(session, centre, patient, who)
        counts.persons += 1
        if not patient.consented:
            return True
        computed = computed_dataset(patient, who, seed, store)
        result = load_dataset(
            session, computed, centre=patient.centre, store=store, rules=rules
        )
        counts.datasets += 1
        counts.structures += result.structures
        counts.metrics += result.metrics
        n_tox, n_prom = _outcomes(session, person_id, patient, who)
        counts.gradings += n_tox
        counts.questionnaires += n_prom
        if patient.died_on is not None and (
            patient.withdrawn_on is None or patient.died_on < patient.withdrawn_on
        ):
            record_death(session, person_id, who.shift(patient.died_on))
            counts.deaths += 1
        else:
            record_last_contact(session, person_id, who.shift(patient.last_contact))
        if patient.withdrawn_on is not None:
            record_consent(
                session, centre=centre, pseudonym=who.pseudonym,
                state=ConsentState.WITHDRAWN,
                event_date=who.shift(patient.withdrawn_on),
                actor=_ACTOR,
            )  # fmt: skip
    return True


def centre_for(session: Session, code: str) -> CareSite:
    """Return the CARE_SITE of a simulated centre (created when new; cached)."""
    cache: dict[str, CareSite] = session.info.setdefault("simulator_centres", {})
    if code not in cache:
        from sqlalchemy import select

        found = session.scalar(
            select(CareSite).where(CareSite.care_site_source_value == code)
        )
        cache[code] = found or add_centre(session, code, f"{code} (simulated centre)")
    return cache[code]
