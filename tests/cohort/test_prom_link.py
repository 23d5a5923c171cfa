"""A patient submits the QLQ-C30 through an invitation link (cohort + instruments)."""

from __future__ import annotations

import datetime
import threading

import pytest
from cohort_helpers import centre, enrol
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cohort import invitations
from cohort.errors import UsedTokenError
from cohort.prom_link import InvalidFormError, submit_prom_by_link
from omop.cdm import Measurement, Observation, SurveyConduct
from omop.vocab.registry import our_concept_id

KEY = bytes(range(32))
NOW = datetime.datetime(2025, 5, 1, 9, tzinfo=datetime.UTC)
ALL_TWOS = {i: (2 if i <= 28 else 4) for i in range(1, 31)}


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_submission_stores_answers_and_scores_once(session: Session) -> None:
    pid = enrol(session, centre(session, "PL1"), "PL1-P")
    token = invitations.issue(session, KEY, pid, "m3", now=NOW).token
    form = submit_prom_by_link(
        session, KEY, token, ALL_TWOS, date_offset_days=-400, now=NOW
    )
    survey = session.get(SurveyConduct, form.survey_conduct_id)
    assert survey is not None
    assert survey.person_id == pid
    assert survey.survey_end_datetime.date() == datetime.date(2025, 5, 1) - (
        datetime.timedelta(days=400)
    )
    pf2 = session.scalar(
        select(Measurement.value_as_number).where(
            Measurement.person_id == pid,
            Measurement.measurement_source_concept_id
            == our_concept_id("QLQ-C30", "PF2"),
        )
    )
    # all items 2 on a 1-4 functional scale: (1 - (2 - 1) / 3) * 100
    assert pf2 == pytest.approx(100 * (1 - 1 / 3))
    answers = session.scalar(
        select(func.count())
        .select_from(Observation)
        .where(Observation.person_id == pid)
    )
    assert answers == 30
    with pytest.raises(UsedTokenError):
        submit_prom_by_link(session, KEY, token, ALL_TWOS, now=NOW)


def test_invalid_form_keeps_the_link_usable(session: Session) -> None:
    pid = enrol(session, centre(session, "PL2"), "PL2-P")
    token = invitations.issue(session, KEY, pid, "m6", now=NOW).token
    before = _count(session, SurveyConduct)
    with pytest.raises(InvalidFormError, match="q29"):
        submit_prom_by_link(session, KEY, token, {**ALL_TWOS, 29: 9}, now=NOW)
    assert _count(session, SurveyConduct) == before
    submit_prom_by_link(session, KEY, token, ALL_TWOS, now=NOW)
    assert _count(session, SurveyConduct) == before + 1


def test_concurrent_submissions_store_each_form_exactly_once(fresh_url: str) -> None:
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory
    from rtcohort.wiring import after_upgrade

    postgres = fresh_url.startswith("postgresql")
    engine = (
        make_engine(fresh_url, pool_size=20, max_overflow=0)
        if postgres
        else (make_engine(fresh_url))
    )
    try:
        upgrade(engine)
        after_upgrade(engine)
        factory = session_factory(engine)
        with factory.begin() as s:
            site = centre(s, "PLC")
            people = [enrol(s, site, f"PLC-{i}") for i in range(10)]
            tokens = [
                invitations.issue(s, KEY, p, "m12", now=NOW).token for p in people
            ]
        attempts = [t for t in tokens for _ in range(2)]  # every link submitted twice
        barrier = threading.Barrier(len(attempts))
        results: list[str] = []
        lock = threading.Lock()

        def worker(token: str) -> None:
            barrier.wait()
            try:
                with factory.begin() as s:
                    submit_prom_by_link(s, KEY, token, ALL_TWOS, now=NOW)
                outcome = "stored"
            except UsedTokenError:
                outcome = "used"
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=worker, args=(t,)) for t in attempts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["stored"] * 10 + ["used"] * 10
        with factory() as s:
            per_person = s.execute(
                select(SurveyConduct.person_id, func.count()).group_by(
                    SurveyConduct.person_id
                )
            ).all()
            assert sorted(n for _, n in per_person) == [1] * 10
            assert _count(s, Observation) == 10 * 30
    finally:
        engine.dispose()
