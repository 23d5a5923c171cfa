from __future__ import annotations

import datetime

import numpy as np
import pytest
from cohort_helpers import D, centre, enrol, prom, rt_course, toxicity
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import vital
from cohort.errors import InvalidInputError
from cohort.schedule import (
    DEFAULT_TIMEPOINTS,
    Anchor,
    Kind,
    Status,
    TimepointDef,
    classify,
    ensure_protocol,
    schedule,
)
from omop.cdm import Death, ObservationPeriod
from omop.cohort_tables import Enrolment

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


def _reference(
    people: list[dict],  # type: ignore[type-arg]
    protocols: dict[str, tuple[TimepointDef, ...]],
    today: datetime.date,
    kinds: tuple[Kind, ...],
) -> list[tuple[object, ...]]:
    """Plain-Python schedule of the generated cohort, one assessment at a time."""
    out: list[tuple[object, ...]] = []
    for p in people:
        if p["rt"] is None:
            continue
        start, end = p["rt"]
        local = today + datetime.timedelta(days=p["offset"])
        for tp in protocols[p["protocol"]]:
            anchor = start if tp.anchor is Anchor.RT_START else end
            if anchor is None:
                continue
            target = anchor + datetime.timedelta(days=tp.offset_days)
            lo = target - datetime.timedelta(days=tp.window_before_days)
            hi = target + datetime.timedelta(days=tp.window_after_days)
            if p["death"] is not None and lo > p["death"]:
                continue
            for kind in kinds:
                if kind is Kind.TOXICITY:
                    if not (tp.toxicity and p["data"]):
                        continue
                    done = any(lo <= d <= hi for d in p["tox"])
                else:
                    if not (tp.prom and p["proms"]):
                        continue
                    done = any(
                        code == tp.code or lo <= d <= hi for code, d in p["surveys"]
                    )
                status = classify(
                    target,
                    tp.window_before_days,
                    tp.window_after_days,
                    local,
                    done=done,
                )
                out.append((p["id"], tp.code, kind, target, lo, hi, status))
    return out


def _event_day(
    rng: np.random.Generator,
    start: datetime.date,
    end: datetime.date | None,
    tps: tuple[TimepointDef, ...],
    *,
    at_opening: bool = False,
) -> datetime.date:
    """A random day, half of the time on or next to a target or window edge."""
    if not at_opening and rng.random() < 0.5:
        return start + datetime.timedelta(days=int(rng.integers(-40, 1900)))
    tp = tps[int(rng.integers(len(tps)))]
    anchor = start if tp.anchor is Anchor.RT_START or end is None else end
    edge = [-tp.window_before_days, 0, tp.window_after_days][int(rng.integers(3))]
    if at_opening:
        edge = -tp.window_before_days
    step = int(rng.integers(-1, 2))
    return anchor + datetime.timedelta(days=tp.offset_days + edge + step)


def _storable(day: datetime.date, death: datetime.date | None) -> bool:
    """The store refuses assessments after today (+1 day) or after death."""
    latest = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=1)
    return day <= latest and (death is None or day <= death)


def _random_history(  # noqa: PLR0917
    session: Session,
    rng: np.random.Generator,
    p: dict,  # type: ignore[type-arg]
    today: datetime.date,
    tps: tuple[TimepointDef, ...],
    codes: list[str],
) -> None:
    """Give a random patient an RT course, a death, gradings and surveys (or none)."""
    if rng.random() < 0.1:
        return  # no RT course yet
    start = today - datetime.timedelta(days=int(rng.integers(-60, 2000)))
    end = (
        None
        if rng.random() < 0.1
        else start + datetime.timedelta(days=int(rng.integers(20, 50)))
    )
    p["rt"] = (start, end)
    rt_course(session, p["id"], start, end)  # type: ignore[arg-type]
    if rng.random() < 0.3:  # a later course does not count
        rt_course(session, p["id"], start + datetime.timedelta(days=400), end)  # type: ignore[arg-type]
    if rng.random() < 0.4:  # the patient's today on or next to a window edge
        p["offset"] = (_event_day(rng, start, end, tps) - today).days
    if rng.random() < 0.3:
        p["death"] = _event_day(rng, start, end, tps, at_opening=True)
        session.add(
            Death(person_id=p["id"], death_date=p["death"], death_type_concept_id=0)
        )
    for n_tox in range(int(rng.integers(0, 5))):
        day = _event_day(rng, start, end, tps)
        if _storable(day, p["death"]):
            p["tox"].append(day)
            # one grading per term and timepoint (a second one is a correction);
            # the schedule matches gradings by date, whatever their timepoint
            toxicity(session, p["id"], day, codes[n_tox])
    for _ in range(int(rng.integers(0, 4))):
        day = _event_day(rng, start, end, tps)
        code = codes[int(rng.integers(len(codes)))]
        if _storable(day, p["death"]):
            p["surveys"].append((code, day))
            prom(session, p["id"], code, day)


def test_schedule_matches_plain_python_reference_on_random_cohort(
    session: Session,
) -> None:
    rng = np.random.default_rng(20260115)
    site = centre(session, "SR")
    short = (
        TimepointDef("baseline", Anchor.RT_START, 0, 14, 3, prom=False),
        TimepointDef("m3", Anchor.RT_END, 91, 21, 21, toxicity=False),
        TimepointDef("w1", Anchor.RT_START, 7, 0, 0),  # one-day window
    )
    ensure_protocol(session, "short", short, "Short protocol")
    protocols = {"default": DEFAULT_TIMEPOINTS, "short": short}
    today = D(2026, 1, 15)
    codes = [tp.code for tp in DEFAULT_TIMEPOINTS]
    people = []
    for n in range(80):
        scopes = ["data", "proms"] if rng.random() < 0.7 else ["data"]
        pid = enrol(session, site, f"SR-{n:03d}", scopes=scopes)
        p: dict = {  # type: ignore[type-arg]
            "id": pid,
            "data": True,
            "proms": "proms" in scopes,
            "protocol": "short" if rng.random() < 0.3 else "default",
            "offset": int(rng.integers(-400, 400)) if rng.random() < 0.5 else 0,
            "rt": None,
            "death": None,
            "tox": [],
            "surveys": [],
        }
        people.append(p)
        if p["protocol"] == "short":
            row = session.scalars(
                select(Enrolment).where(Enrolment.person_id == pid)
            ).one()
            row.protocol_code = "short"
        _random_history(session, rng, p, today, protocols[p["protocol"]], codes)
    session.flush()
    offsets = {p["id"]: p["offset"] for p in people if p["offset"]}
    for kinds in ((Kind.TOXICITY, Kind.PROM), (Kind.PROM,), (Kind.PROM, Kind.TOXICITY)):
        items = schedule(
            session, site.care_site_id, today, kinds=kinds, offsets=offsets
        )
        got = [
            (
                i.person_id,
                i.timepoint,
                i.kind,
                i.target_date,
                i.window_start,
                i.window_end,
                i.status,
            )
            for i in items
        ]
        expected = _reference(people, protocols, today, kinds)
        assert sorted(got, key=repr) == sorted(expected, key=repr)
        # per person contiguous, in protocol timepoint order, then kind order
        by_person = [g[0] for g in got]
        assert by_person == sorted(by_person, key=by_person.index)
        for pid in set(by_person):
            assert [g for g in got if g[0] == pid] == [
                e for e in expected if e[0] == pid
            ]
        assert {g[6] for g in got} >= {Status.DONE, Status.MISSED, Status.UPCOMING}
        wanted = {Status.DUE, Status.OVERDUE}
        subset = schedule(
            session,
            site.care_site_id,
            today,
            kinds=kinds,
            offsets=offsets,
            statuses=wanted,
        )
        assert [i for i in items if i.status in wanted] == subset
