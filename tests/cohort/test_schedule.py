from __future__ import annotations

import datetime

import pytest
from cohort_helpers import D, centre, enrol, prom, rt_course, toxicity
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import vital
from cohort.errors import InvalidInputError
from cohort.schedule import Kind, Status, classify, schedule
from omop.cdm import Death, ObservationPeriod

# RT 2025-01-06 .. 2025-02-14; m3 target = end + 91 d = 2025-05-16, window +-30 d.
START, END = D(2025, 1, 6), D(2025, 2, 14)
M3 = D(2025, 5, 16)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (D(2025, 4, 15), Status.UPCOMING),  # window opens 04-16
        (D(2025, 4, 16), Status.DUE),
        (M3, Status.DUE),
        (D(2025, 5, 17), Status.OVERDUE),
        (D(2025, 6, 15), Status.OVERDUE),  # window closes 06-15
        (D(2025, 6, 16), Status.MISSED),
    ],
)
def test_classify_window_edges(today: datetime.date, expected: Status) -> None:
    assert classify(M3, 30, 30, today, done=False) is expected
    assert classify(M3, 30, 30, today, done=True) is Status.DONE


def _m3(items: list, kind: Kind) -> Status:  # type: ignore[type-arg]
    (item,) = [i for i in items if i.timepoint == "m3" and i.kind is kind]
    return item.status  # type: ignore[no-any-return]


def test_schedule_per_patient_and_kind(session: Session) -> None:
    site = centre(session, "S1")
    a = enrol(session, site, "S1-A")
    b = enrol(session, site, "S1-B", scopes=["data"])  # no PROM consent
    c = enrol(session, site, "S1-C")  # no RT course: no schedule
    enrol(session, site, "S1-D", state="declined")
    rt_course(session, a, START, END)
    rt_course(session, b, START, END)
    toxicity(session, a, D(2025, 5, 10))  # in the m3 window
    prom(session, b, "m3", D(2025, 5, 10))  # ignored: no PROM consent
    items = schedule(session, site.care_site_id, D(2025, 5, 20))
    assert {i.person_id for i in items} == {a, b}
    tox = {
        i.person_id: i for i in items if i.timepoint == "m3" and i.kind is Kind.TOXICITY
    }
    assert tox[a].status is Status.DONE
    assert tox[b].status is Status.OVERDUE
    proms = [i for i in items if i.kind is Kind.PROM]
    assert {i.person_id for i in proms} == {a}
    m3_prom = next(i for i in proms if i.timepoint == "m3")
    assert (m3_prom.target_date, m3_prom.status) == (M3, Status.OVERDUE)
    assert m3_prom.window_start == D(2025, 4, 16)
    baseline = next(i for i in proms if i.timepoint == "baseline")
    assert baseline.status is Status.MISSED
    del c


def test_prom_done_and_date_offset(session: Session) -> None:
    site = centre(session, "S2")
    a = enrol(session, site, "S2-A")
    rt_course(session, a, START, END)
    prom(session, a, "m3", D(2025, 5, 1))
    items = schedule(session, site.care_site_id, D(2025, 5, 20), kinds=(Kind.PROM,))
    assert _m3(items, Kind.PROM) is Status.DONE
    # dates shifted by -100 days: real today 2025-08-28 is 2025-05-20 for the patient
    items = schedule(
        session,
        site.care_site_id,
        D(2025, 8, 28),
        kinds=(Kind.TOXICITY,),
        offsets={a: -100},
    )
    assert _m3(items, Kind.TOXICITY) is Status.OVERDUE


def test_death_closes_period_and_drops_later_timepoints(session: Session) -> None:
    site = centre(session, "S3")
    a = enrol(session, site, "S3-A", day=D(2025, 1, 2))
    rt_course(session, a, START, END)
    vital.record_last_contact(session, a, D(2025, 3, 1))
    period = session.scalars(
        select(ObservationPeriod).where(ObservationPeriod.person_id == a)
    ).one()
    assert period.observation_period_end_date == D(2025, 3, 1)
    vital.record_death(session, a, D(2025, 4, 1))
    assert session.get(Death, a).death_date == D(2025, 4, 1)  # type: ignore[union-attr]
    assert period.observation_period_end_date == D(2025, 4, 1)
    with pytest.raises(InvalidInputError):
        vital.record_death(session, a, D(2025, 4, 2))
    with pytest.raises(InvalidInputError):
        vital.record_last_contact(session, a, D(2025, 5, 1))
    codes = {i.timepoint for i in schedule(session, site.care_site_id, D(2025, 6, 1))}
    assert codes == {"baseline", "eot"}  # m3 window opens 2025-04-16, after death
    status = vital.vital_status(session, [a])[a]
    assert (status.last_contact_date, status.death_date) == (
        D(2025, 4, 1),
        D(2025, 4, 1),
    )
