"""Storing PROMs and CTCAE gradings in OMOP (both backends) and reading them back."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from instruments.fhir import (
    PSEUDONYM_SYSTEM,
    PromResponse,
    SubjectIdentifier,
    parse_questionnaire_responses,
    questionnaire_response,
)
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.store import (
    CASE_REPORT_FORM,
    PATIENT_FILLED_SURVEY,
    Assessment,
    StoreError,
    StoreOutcome,
    assessment_history,
    person_id_for_pseudonym,
    read_latest_scores,
    read_prom_answers,
    read_prom_scores,
    read_survey_timings,
    read_toxicity,
    read_toxicity_dates,
    store_prom,
    store_toxicity,
    toxicity_key,
)
from omop import cdm
from omop.vocab.registry import our_concept_id
from tests.instruments.store_helpers import add_person as _person
from tests.instruments.store_helpers import qlq_response

SUBJECT = SubjectIdentifier(PSEUDONYM_SYSTEM, "PSEUDO-1")


def _response(rid: str = "qr-1", **values: int | None) -> PromResponse:
    return qlq_response(
        rid, SUBJECT, datetime(2024, 3, 10, 23, 30, tzinfo=UTC), **values
    )


def test_store_prom_rows_dates_and_scores(session: Session):
    pid = _person(session, "PSEUDO-1")
    assert person_id_for_pseudonym(session, "PSEUDO-1") == pid
    assert person_id_for_pseudonym(session, "nobody") is None
    where = Assessment(pid, "m3", date_offset_days=-100)
    # Items 10, 12, 18 = 2, 3, missing: FA from 2 of 3 items = (2.5 - 1) / 3 * 100 = 50
    response = _response(q10=2, q12=3, q18=None)
    sid, outcome = store_prom(session, where, response)
    assert outcome is StoreOutcome.STORED
    survey = session.get(cdm.SurveyConduct, sid)
    assert survey is not None
    shifted = date(2024, 3, 10) - timedelta(days=100)
    assert survey.survey_end_date == shifted
    stored_utc = survey.survey_end_datetime.replace(tzinfo=UTC)  # stored naive UTC
    assert stored_utc == datetime(2024, 3, 10, 23, 30, tzinfo=UTC) - timedelta(100)
    assert survey.timing_source_value == "m3"
    n_obs = session.scalar(
        select(func.count()).where(
            cdm.Observation.observation_event_id == sid,
            cdm.Observation.observation_type_concept_id == PATIENT_FILLED_SURVEY,
        )
    )
    assert n_obs == 29  # q18 unanswered: no row
    dates = session.scalars(
        select(cdm.Measurement.measurement_date).where(
            cdm.Measurement.measurement_event_id == sid
        )
    ).all()
    assert len(dates) == 16
    assert set(dates) == {shifted}
    scores = read_prom_scores(session, [pid])
    assert len(scores) == 1
    row = scores.iloc[0]
    assert row["timepoint"] == "m3"
    assert row["FA"] == pytest.approx(50.0)
    assert row["PF2"] == pytest.approx(100.0)
    assert row["QL2"] == pytest.approx(100.0)
    assert row["key"] == "qr-1"
    answers = read_prom_answers(session, [pid])
    assert len(answers) == 29
    assert answers.set_index("item").loc["q12", "value"] == 3


def test_store_prom_is_idempotent_refuses_and_corrects_changes(session: Session):
    pid = _person(session, "PSEUDO-2")
    where = Assessment(pid, "baseline", date_offset_days=5)
    first, _ = store_prom(session, where, _response())
    again, outcome2 = store_prom(session, where, _response())
    assert (again, outcome2) == (first, StoreOutcome.UNCHANGED)
    refused = store_prom(session, where, _response(q1=4))
    assert refused == (first, StoreOutcome.REFUSED)
    with pytest.raises(StoreError, match="needs a reason"):
        store_prom(session, where, _response(q1=4), correction_reason="  ")
    second, outcome3 = store_prom(
        session, where, _response(q1=4), correction_reason="typo", actor="dm"
    )
    assert outcome3 is StoreOutcome.CORRECTED
    assert second != first
    n_surveys = session.scalar(
        select(func.count()).where(cdm.SurveyConduct.person_id == pid)
    )
    assert n_surveys == 1  # the earlier version left OMOP for the history
    history = assessment_history(session, pid, "prom", "qr-1")
    assert [(v.version, v.current, v.reason, v.actor) for v in history] == [
        (1, False, None, None),
        (2, True, "typo", "dm"),
    ]
    assert history[0].rows["survey_conduct"][0]["survey_conduct_id"] == first
    assert [v.values["answers"]["q1"] for v in history] == [1.0, 4.0]
    frame = read_prom_scores(session, [pid])
    assert frame["survey_conduct_id"].tolist() == [second]
    # PF2 items 4,1,1,1,1 -> RS 1.6 -> (1 - 0.6/3) * 100 = 80
    assert frame.iloc[0]["PF2"] == pytest.approx(80.0)
    assert len(read_prom_answers(session, [pid])) == 30


def test_store_prom_local_date_and_utc_time(session: Session):
    pid = _person(session, "PSEUDO-8")
    local = datetime(2024, 3, 11, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    response = PromResponse("qr-8", "QLQ-C30", SUBJECT, local, _response().values)
    sid, _ = store_prom(session, Assessment(pid, "m3", date_offset_days=2), response)
    survey = session.get(cdm.SurveyConduct, sid)
    assert survey is not None
    assert survey.survey_end_date == date(2024, 3, 13)  # local date + 2 days
    assert survey.survey_end_datetime == datetime(2024, 3, 12, 23, 30)  # noqa: DTZ001


def test_store_prom_unscorable_summary_is_missing(session: Session):
    pid = _person(session, "PSEUDO-3")
    store_prom(session, Assessment(pid, "m6"), _response(q8=None))
    row = read_prom_scores(session, [pid]).iloc[0]
    assert math.isnan(row["DY"])
    assert math.isnan(row["SUMMARY"])


def test_store_prom_errors(session: Session):
    pid = _person(session, "PSEUDO-4")
    with pytest.raises(StoreError, match="no concept for RTC Timepoint 'm7'"):
        store_prom(session, Assessment(pid, "m7"), _response())
    with pytest.raises(StoreError, match="unknown person_id"):
        store_prom(session, Assessment(pid + 1000, "m3"), _response())
    with pytest.raises(StoreError, match="item q2 value 9"):
        store_prom(session, Assessment(pid, "m3"), _response(q2=9))


def test_fhir_round_trip_through_the_database(session: Session):
    pid = _person(session, "PSEUDO-5")
    response = _response("qr-5", q3=2, q29=4)
    (parsed,) = parse_questionnaire_responses(questionnaire_response(response))
    store_prom(session, Assessment(pid, "eot"), parsed)
    answers = read_prom_answers(session, [pid])
    stored = {r.item: r.value for r in answers.itertuples()}
    assert stored == {f"q{n}": float(v) for n, v in response.values.items()}


def _grading(**changes) -> ToxicityGrading:
    fields = {
        "resource_id": "ae-1",
        "subject": SUBJECT,
        "version": "5.0",
        "term": "Dry mouth",
        "grade": 2,
        "assessed_on": date(2024, 5, 1),
        "attribution": "probable",
    }
    return ToxicityGrading(**(fields | changes))


def test_store_toxicity_grade_and_absent(session: Session):
    pid = _person(session, "PSEUDO-6")
    where = Assessment(pid, "m3", date_offset_days=-30)
    obs_id, outcome = store_toxicity(session, where, _grading())
    assert outcome is StoreOutcome.STORED
    obs = session.get(cdm.Observation, obs_id)
    assert obs is not None
    assert obs.observation_date == date(2024, 4, 1)
    assert obs.observation_type_concept_id == CASE_REPORT_FORM
    condition = session.get(cdm.ConditionOccurrence, obs.observation_event_id)
    assert condition is not None
    assert condition.condition_start_date == date(2024, 4, 1)
    assert condition.condition_source_value == "10013781"
    absent_id, _ = store_toxicity(
        session, where, _grading(term="Alopecia", grade=0, attribution=None)
    )
    absent = session.get(cdm.Observation, absent_id)
    assert absent is not None
    assert absent.observation_event_id is None
    n_conditions = session.scalar(
        select(func.count()).where(cdm.ConditionOccurrence.person_id == pid)
    )
    assert n_conditions == 1
    frame = read_toxicity(session, [pid]).sort_values("term")
    assert frame["term"].tolist() == ["Alopecia", "Dry mouth"]
    assert frame["grade"].tolist() == [0, 2]
    assert frame["timepoint"].tolist() == ["m3", "m3"]
    assert frame["attribution"].tolist()[1] == "probable"
    assert frame["assessed_on"].tolist() == [date(2024, 4, 1)] * 2


def test_store_toxicity_idempotent_refuses_and_corrects_regrade(session: Session):
    pid = _person(session, "PSEUDO-7")
    where = Assessment(pid, "m6")
    first, _ = store_toxicity(session, where, _grading())
    assert store_toxicity(session, where, _grading()) == (first, StoreOutcome.UNCHANGED)
    regrade = _grading(grade=0, attribution=None)
    assert store_toxicity(session, where, regrade) == (first, StoreOutcome.REFUSED)
    _, outcome = store_toxicity(session, where, regrade, correction_reason="re-read")
    assert outcome is StoreOutcome.CORRECTED
    frame = read_toxicity(session, [pid])
    assert frame["grade"].tolist() == [0]
    n_conditions = session.scalar(
        select(func.count()).where(cdm.ConditionOccurrence.person_id == pid)
    )
    assert n_conditions == 0  # the grade 2 condition left OMOP with its version
    history = assessment_history(
        session, pid, "toxicity", toxicity_key("5.0", "10013781", "m6")
    )
    assert [(v.values["grade"], v.reason) for v in history] == [
        (2, None),
        (0, "re-read"),
    ]
    assert history[0].rows["condition_occurrence"][0]["condition_source_value"] == (
        "10013781"
    )


def test_timepoint_is_the_timing_concept_and_readers_see_it(session: Session):
    pid = _person(session, "PSEUDO-T")
    other = _person(session, "PSEUDO-U")
    early = _response("qr-t1", q29=7, q30=7)  # QL2 (7 - 1) / 6 * 100 = 100
    late = PromResponse(
        "qr-t2",
        "QLQ-C30",
        SUBJECT,
        datetime(2024, 6, 1, 8, tzinfo=UTC),
        _response(q29=4, q30=4).values,  # QL2 (4 - 1) / 6 * 100 = 50
    )
    sid, _ = store_prom(session, Assessment(pid, "m3", -10), early)
    store_prom(session, Assessment(pid, "m3", -10), late)  # later: wins for m3
    store_prom(session, Assessment(other, "baseline"), _response("qr-t3"))
    survey = session.get(cdm.SurveyConduct, sid)
    assert survey is not None
    assert survey.timing_concept_id == our_concept_id("RTC Timepoint", "m3")
    assert survey.timing_source_value == "m3"
    timings = read_survey_timings(session, [pid])
    assert sorted((t.timepoint, t.completed_at) for t in timings) == [
        # naive UTC, 10 days back (2024 is a leap year)
        ("m3", datetime(2024, 2, 29, 23, 30, tzinfo=UTC).replace(tzinfo=None)),
        ("m3", datetime(2024, 5, 22, 8, tzinfo=UTC).replace(tzinfo=None)),
    ]
    everyone = read_survey_timings(session, select(cdm.Person.person_id))
    assert {(t.person_id, t.timepoint) for t in everyone} >= {
        (pid, "m3"),
        (other, "baseline"),
    }
    assert read_latest_scores(session, [pid, other], "QL2") == {
        (pid, "m3"): pytest.approx(50.0),
        (other, "baseline"): pytest.approx(100.0),
    }
    store_toxicity(session, Assessment(pid, "m3", -10), _grading(grade=0))
    assert [
        (d.person_id, d.assessed_on) for d in read_toxicity_dates(session, [pid])
    ] == [(pid, date(2024, 4, 21))]
