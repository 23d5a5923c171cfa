"""Helpers of the DQD violation tests: the production-built patient and check lookups.

:func:`build_world` loads one RT patient through the production writers (DICOM import,
consent, a CTCAE grading and a QLQ-C30 answer set, death); the helpers find one check
and run it, asserting it ran without error.
"""

from __future__ import annotations

import datetime
from datetime import UTC
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cohort.vital import record_death
from instruments.fhir import PSEUDONYM_SYSTEM, PromResponse, SubjectIdentifier
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.store import Assessment, store_prom, store_toxicity
from omop import cdm
from omop.quality import Check, all_checks
from omop.quality.batch import run_batched
from omop.quality.run import CheckResult, run_check
from omop.vocab.registry import our_concept_id
from tests.etl.ingest_db import Db
from tests.omop.quality.rt_world import course_of, load_patient

PATIENT = "DQD-1"


def build_world(db: Db, folder: Path) -> int:
    """Load :data:`PATIENT`, grade a toxicity and store a PROM at m3, record death.

    Returns the person_id; every row comes from a production writer.
    """
    pid = load_patient(db, folder, PATIENT, 417)
    with db.factory.begin() as s:
        end = course_of(s, pid).episode_end_date
        assert end is not None
        subject = SubjectIdentifier(PSEUDONYM_SYSTEM, PATIENT)
        day = end + datetime.timedelta(days=91)
        grading = ToxicityGrading(
            "ae-1", subject, "5.0", "Dry mouth", 2, day, timepoint="m3"
        )
        store_toxicity(s, Assessment(pid, "m3"), grading)
        answers: dict[int, int | None] = dict.fromkeys(range(1, 31), 2)
        answers[29] = answers[30] = 5
        when = datetime.datetime.combine(day, datetime.time(10), tzinfo=UTC)
        store_prom(
            s,
            Assessment(pid, "m3"),
            PromResponse("qr-1", "QLQ-C30", subject, when, answers),
        )
        record_death(s, pid, day + datetime.timedelta(days=400))
    return pid


def check_named(s: Session, name: str, table: str, field: str | None = None) -> Check:
    found = [
        c
        for c in all_checks(s.get_bind().dialect.name)
        if (c.name, c.table) == (name, table) and (field is None or c.field == field)
    ]
    assert len(found) == 1, (name, table, field, len(found))
    assert not found[0].not_applicable, found[0].not_applicable
    return found[0]


def run_ok(s: Session, check: Check) -> CheckResult:
    result = run_check(s, check)
    assert result.error is None, result.error
    (batched,) = run_batched(s, [check])  # a plain count is counted on a scan
    assert (
        batched.status,
        batched.num_violated_rows,
        batched.num_denominator_rows,
    ) == (
        result.status,
        result.num_violated_rows,
        result.num_denominator_rows,
    )
    return result


def count_rows(s: Session, table: type[object], *where: object) -> int:
    return int(s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def passes(s: Session, check: Check) -> CheckResult:
    result = run_ok(s, check)
    assert result.num_violated_rows == 0 and not result.failed, result
    return result


def condition_of(s: Session, pid: int) -> cdm.ConditionOccurrence:
    return s.scalars(
        select(cdm.ConditionOccurrence).where(cdm.ConditionOccurrence.person_id == pid)
    ).one()


def grade_of(s: Session, pid: int) -> cdm.Observation:
    condition = condition_of(s, pid).condition_occurrence_id
    return s.scalars(
        select(cdm.Observation).where(
            cdm.Observation.person_id == pid,
            cdm.Observation.observation_event_id == condition,
            cdm.Observation.obs_event_field_concept_id == 1147127,
        )
    ).one()


def metric_of(s: Session, pid: int, code: str) -> cdm.Measurement:
    return s.scalars(
        select(cdm.Measurement)
        .where(
            cdm.Measurement.person_id == pid,
            cdm.Measurement.measurement_source_concept_id
            == our_concept_id("RTC Dose Metric", code),
        )
        .order_by(cdm.Measurement.measurement_id)
        .limit(1)
    ).one()
