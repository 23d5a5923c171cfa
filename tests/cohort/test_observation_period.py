"""OBSERVATION_PERIOD kept by every writer (issue #17 part 1), on both backends."""

from __future__ import annotations

import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cohort.vital import record_death, record_last_contact
from omop.cdm import ObservationPeriod
from omop.observation_period import (
    extend_observation_period,
    recompute_observation_periods,
)
from tests.cohort.cohort_helpers import ENROLLED_ON, centre, enrol, prom, toxicity

D = datetime.date


def _periods(session: Session, person_id: int) -> list[tuple[D, D]]:
    return [
        (p.observation_period_start_date, p.observation_period_end_date)
        for p in session.scalars(
            select(ObservationPeriod).where(ObservationPeriod.person_id == person_id)
        )
    ]


def test_every_writer_extends_the_one_period(session: Session) -> None:
    site = centre(session, "OPA")
    pid = enrol(session, site, "OPA-PERSON-1", state="approached", day=D(2025, 1, 2))
    assert _periods(session, pid) == [(D(2025, 1, 2), D(2025, 1, 2))]
    enrol(session, site, "OPA-PERSON-1", day=ENROLLED_ON)  # consent restarts it
    assert _periods(session, pid) == [(ENROLLED_ON, ENROLLED_ON)]
    toxicity(session, pid, D(2025, 4, 10))
    assert _periods(session, pid) == [(ENROLLED_ON, D(2025, 4, 10))]
    prom(session, pid, "m6", D(2025, 7, 1))
    assert _periods(session, pid) == [(ENROLLED_ON, D(2025, 7, 1))]
    record_last_contact(session, pid, D(2025, 9, 1))
    assert _periods(session, pid) == [(ENROLLED_ON, D(2025, 9, 1))]
    record_last_contact(session, pid, D(2025, 8, 1))  # an earlier contact: no change
    assert _periods(session, pid) == [(ENROLLED_ON, D(2025, 9, 1))]
    record_death(session, pid, D(2025, 10, 5))
    assert _periods(session, pid) == [(ENROLLED_ON, D(2025, 10, 5))]


def test_no_consent_period_runs_from_first_contact_to_the_decision(
    session: Session,
) -> None:
    site = centre(session, "OPB")
    pid = enrol(session, site, "OPB-PERSON-1", state="eligible", day=D(2025, 2, 1))
    enrol(session, site, "OPB-PERSON-1", state="approached", day=D(2025, 2, 8))
    enrol(session, site, "OPB-PERSON-1", state="declined", day=D(2025, 2, 20))
    assert _periods(session, pid) == [(D(2025, 2, 1), D(2025, 2, 20))]


def test_extend_is_idempotent_and_merges_periods(session: Session) -> None:
    site = centre(session, "OPC")
    pid = enrol(session, site, "OPC-PERSON-1", day=D(2025, 3, 1))
    extend_observation_period(session, pid, D(2025, 3, 5), D(2025, 3, 9))
    extend_observation_period(session, pid, D(2025, 3, 5), D(2025, 3, 9))
    assert _periods(session, pid) == [(D(2025, 3, 1), D(2025, 3, 9))]
    # a second period, as an older version could leave: merged into one
    session.add(
        ObservationPeriod(
            person_id=pid,
            observation_period_start_date=D(2025, 6, 1),
            observation_period_end_date=D(2025, 6, 2),
            period_type_concept_id=32879,
        )
    )
    session.flush()
    extend_observation_period(session, pid, D(2025, 3, 1))
    assert _periods(session, pid) == [(D(2025, 3, 1), D(2025, 6, 2))]


def test_recompute_derives_periods_from_the_events(session: Session) -> None:
    site = centre(session, "OPD")
    done = enrol(session, site, "OPD-PERSON-1", day=D(2025, 1, 10))
    toxicity(session, done, D(2025, 5, 2))
    pending = enrol(
        session, site, "OPD-PERSON-2", state="approached", day=D(2025, 4, 1)
    )
    # the old rule: a one-day period opened at consent (direct update: no writer
    # writes it any more)
    session.execute(
        update(ObservationPeriod)
        .where(ObservationPeriod.person_id.in_([done, pending]))
        .values(
            observation_period_end_date=ObservationPeriod.observation_period_start_date
        )
    )
    today = D(2025, 6, 30)
    report = recompute_observation_periods(session, today)
    assert report.changed >= 2
    assert _periods(session, done) == [(D(2025, 1, 10), D(2025, 5, 2))]
    assert _periods(session, pending) == [(D(2025, 4, 1), today)]  # undecided
    assert recompute_observation_periods(session, today).changed == 0
