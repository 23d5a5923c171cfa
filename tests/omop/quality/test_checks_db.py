"""Each check type on a database built to violate it and one that satisfies it.

Both backends (``session`` fixture). PERSON rows are inserted directly, as in
tests/instruments/test_store.py; PROM and CTCAE rows go through the production writers
(instruments.store); rows that no writer produces (implausible values) are direct ORM
inserts or updates, marked where they happen.
"""

from __future__ import annotations

import datetime
from datetime import UTC

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from instruments.fhir import PSEUDONYM_SYSTEM, PromResponse, SubjectIdentifier
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.store import Assessment, store_prom, store_toxicity
from omop import cdm
from omop.quality import Check, all_checks
from omop.quality.run import run_check, run_checks

DAY = datetime.date(2024, 3, 1)


def _check(
    session: Session, name: str, table: str, field: str | None = None, concept=None
) -> Check:
    backend = session.get_bind().dialect.name
    found = [
        c
        for c in all_checks(backend)
        if c.name == name
        and c.table == table
        and (field is None or c.field == field)
        and (concept is None or c.concept_id == concept)
    ]
    assert len(found) == 1, (name, table, field, len(found))
    return found[0]


def _person(session: Session, source: str, gender: int = 8532, year: int = 1960) -> int:
    # direct insert: the consent writer needs a whole centre; these tests need a PERSON
    person = cdm.Person(
        gender_concept_id=gender,
        year_of_birth=year,
        race_concept_id=0,
        ethnicity_concept_id=0,
        person_source_value=source,
    )
    session.add(person)
    session.flush()
    return int(person.person_id)


def _concepts(session: Session, *ids: int) -> None:
    # direct insert: Athena concepts the seed lacks (the Athena loader needs whole
    # files); shaped like the seeded UCUM concept 8554
    model = session.get(cdm.Concept, 8554)
    assert model is not None
    for cid in ids:
        if session.get(cdm.Concept, cid) is None:
            session.add(
                cdm.Concept(
                    concept_id=cid,
                    concept_name=f"concept {cid}",
                    domain_id=model.domain_id,
                    vocabulary_id=model.vocabulary_id,
                    concept_class_id=model.concept_class_id,
                    standard_concept="S",
                    concept_code=str(cid),
                    valid_start_date=model.valid_start_date,
                    valid_end_date=model.valid_end_date,
                )
            )
    session.flush()


def _measurement(session: Session, pid: int, day: datetime.date, **kw: object) -> None:
    # direct insert: a measurement with the exact concept/value/unit a check looks at
    values = {
        "measurement_concept_id": 0,
        "measurement_type_concept_id": 32817,
        **kw,
    }
    session.add(cdm.Measurement(person_id=pid, measurement_date=day, **values))
    session.flush()


def test_plausible_value_high_year_of_birth(session: Session) -> None:
    check = _check(session, "plausibleValueHigh", "person", "year_of_birth")
    _person(session, "a", year=1960)
    assert run_check(session, check).num_violated_rows == 0
    _person(
        session, "b", year=datetime.datetime.now(UTC).year + 2
    )  # implausible: direct
    result = run_check(session, check)
    assert (result.num_violated_rows, result.num_denominator_rows) == (1, 2)
    assert result.failed == (check.threshold < 50)


def test_plausible_value_low_date(session: Session) -> None:
    check = _check(session, "plausibleValueLow", "measurement", "measurement_date")
    pid = _person(session, "a")
    _measurement(session, pid, DAY)
    assert run_check(session, check).num_violated_rows == 0
    _measurement(session, pid, datetime.date(1949, 12, 31))  # before 1950: direct
    assert run_check(session, check).num_violated_rows == 1


def test_person_completeness_and_empty_table_not_applicable(session: Session) -> None:
    check = _check(session, "measurePersonCompleteness", "measurement")
    assert run_check(session, check).not_applicable  # no persons
    a, _ = _person(session, "a"), _person(session, "b")
    _measurement(session, a, DAY)
    result = run_check(session, check)
    assert (result.num_violated_rows, result.num_denominator_rows) == (1, 2)


def test_during_life_and_before_death(session: Session) -> None:
    during = _check(session, "plausibleBeforeDeath", "measurement", "measurement_date")
    pid = _person(session, "a")
    session.add(cdm.Death(person_id=pid, death_date=DAY, death_type_concept_id=32817))
    _measurement(session, pid, DAY + datetime.timedelta(days=60))
    assert run_check(session, during).num_violated_rows == 0
    _measurement(session, pid, DAY + datetime.timedelta(days=61))
    assert run_check(session, during).num_violated_rows == 1


def test_standard_concept_completeness_and_unit_ids(session: Session) -> None:
    completeness = _check(
        session,
        "standardConceptRecordCompleteness",
        "measurement",
        "measurement_concept_id",
    )
    units = _check(
        session,
        "plausibleUnitConceptIds",
        "measurement",
        "measurement_concept_id",
        3013721,
    )
    allowed = sorted(v for k, v in units.params.items() if k.startswith("u"))
    _concepts(session, 3013721, allowed[0])
    pid = _person(session, "a")
    _measurement(
        session,
        pid,
        DAY,
        measurement_concept_id=3013721,
        value_as_number=30.0,
        unit_concept_id=allowed[0],
        unit_source_value="U/L",
    )
    assert run_check(session, completeness).num_violated_rows == 0
    assert run_check(session, units).num_violated_rows == 0
    _measurement(
        session,
        pid,
        DAY,
        measurement_concept_id=3013721,
        value_as_number=30.0,
        unit_concept_id=8554,
        unit_source_value="%",
    )
    _measurement(session, pid, DAY)  # concept 0
    assert run_check(session, completeness).num_violated_rows == 1
    result = run_check(session, units)
    assert (result.num_violated_rows, result.num_denominator_rows) == (1, 2)


def test_plausible_gender(session: Session) -> None:
    # concept-level row: a condition only plausible for one sex
    check = next(
        c
        for c in all_checks(session.get_bind().dialect.name)
        if c.name == "plausibleGender" and c.table == "condition_occurrence"
    )
    gender = check.params["gender"]
    concept = check.params["c0"]
    other = 8507 if gender == 8532 else 8532
    _concepts(session, concept)
    for source, sex in (("a", gender), ("b", other)):
        pid = _person(session, source, gender=sex)
        session.add(  # direct insert: no writer records arbitrary conditions
            cdm.ConditionOccurrence(
                person_id=pid,
                condition_concept_id=concept,
                condition_start_date=DAY,
                condition_type_concept_id=32817,
            )
        )
    session.flush()
    result = run_check(session, check)
    assert (result.num_violated_rows, result.num_denominator_rows) == (1, 2)


def test_rt_prom_range_and_ctcae_grades(session: Session) -> None:
    prom, grades = (
        _check(session, "rtPromScoreRange", "measurement"),
        _check(session, "rtCtcaeGradeAllowed", "observation"),
    )
    pid = _person(session, "PSEUDO-1")
    subject = SubjectIdentifier(PSEUDONYM_SYSTEM, "PSEUDO-1")
    answers: dict[int, int | None] = dict.fromkeys(range(1, 31), 2)
    answers[29] = answers[30] = 5
    response = PromResponse(
        "qr-1", "QLQ-C30", subject, datetime.datetime(2024, 3, 1, tzinfo=UTC), answers
    )
    sid, _ = store_prom(session, Assessment(pid, "m3"), response)
    grading = ToxicityGrading(
        "ae-1", subject, "5.0", "Dry mouth", 2, DAY, timepoint="m3"
    )
    oid, _ = store_toxicity(session, Assessment(pid, "m3"), grading)
    first = run_check(session, prom)
    assert first.num_violated_rows == 0 and first.num_denominator_rows > 0
    assert run_check(session, grades).num_violated_rows == 0
    # implausible values no writer stores: direct updates
    session.execute(
        update(cdm.Measurement)
        .where(cdm.Measurement.measurement_event_id == sid)
        .values(value_as_number=101.0)
    )
    session.execute(  # Dry mouth defines grades 1-3 in CTCAE v5.0
        update(cdm.Observation)
        .where(cdm.Observation.observation_id == oid)
        .values(value_as_number=4.0)
    )
    assert run_check(session, prom).num_violated_rows == first.num_denominator_rows
    assert run_check(session, grades).num_violated_rows == 1


def test_failing_sql_is_an_error_and_others_still_run(session: Session) -> None:
    good = _check(session, "cdmTable", "person")
    bad = Check(
        name="broken",
        level="TABLE",
        table="person",
        field=None,
        numerator="SELECT COUNT(*) FROM no_such_table",
        denominator="SELECT 1",
        threshold=0.0,
        category="Conformance",
    )
    missing = Check(
        name="cdmTable",
        level="TABLE",
        table="no_such_table",
        field=None,
        numerator=good.numerator,
        denominator="SELECT 1",
        threshold=0.0,
        category="Conformance",
        params={"table_name": "no_such_table"},
    )
    first, second, third = run_checks(session, [bad, good, missing])
    assert first.is_error and "no_such_table" in (first.error or "")
    assert second.passed and second.num_violated_rows == 0
    assert third.failed and third.num_violated_rows == 1


@pytest.mark.parametrize("backend_name", ["sqlite"])
def test_cdm_datatype_on_sqlite(session: Session, backend_name: str) -> None:
    if session.get_bind().dialect.name != backend_name:
        pytest.skip("PostgreSQL enforces integer columns")
    from sqlalchemy import text

    check = _check(session, "cdmDatatype", "person", "year_of_birth")
    _person(session, "a")
    assert run_check(session, check).num_violated_rows == 0
    # a text year no writer produces; only SQLite stores it
    session.execute(text("UPDATE person SET year_of_birth = 'abc'"))
    assert run_check(session, check).num_violated_rows == 1
