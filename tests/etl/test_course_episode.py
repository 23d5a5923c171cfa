"""`import` of a two-plan course: ONE RT course EPISODE spanning both plans (18.3).

Plan A (50 Gy / 25) and a boost B (16 Gy / 2) of one patient on one frame of
reference, the boost starting 42 days after A (after A's planned end). After the
import the person has one RT course EPISODE (the plans' episodes are its children)
from A's start to B's planned end, with both plans' procedures linked, the course
prescription 66 Gy in 27 fractions, the course metrics linked to it; the follow-up
schedule anchors on its end; our course checks pass. Both backends.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select

from cohort.schedule import schedule
from etl.ingest.run import run_import
from etl.store.course import read_first_courses
from etl.store.course_dates import planned_end_date
from etl.store.course_metrics import read_course_metrics
from etl.store.course_rx import read_prescriptions
from omop.cdm import Episode, EpisodeEvent, Person
from omop.quality.rt_checks import rt_checks
from omop.quality.run import run_check
from omop.vocab.standard import DISEASE_EPISODE, RT_COURSE_EPISODE
from tests.etl.ingest_db import Db, make_db
from tests.etl.test_course_dates import _consent
from tests.etl.test_load_course import _person, write_course

BOOST_AFTER = 42


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("course_episode"))


def _episodes(db: Db, person_id: int) -> list[Episode]:
    with db.factory() as session:
        return list(
            session.scalars(
                select(Episode)
                .where(Episode.person_id == person_id)
                .order_by(Episode.episode_id)
            )
        )


def test_two_plans_are_one_course_episode(db: Db, tmp_path: Path) -> None:
    folder = write_course(tmp_path, "EPI-1", 1811, boost_after_days=BOOST_AFTER)
    _, site_id = _consent(db, "EPI-1")
    assert run_import(db.factory, [folder], db.options()).courses == 1
    person_id = _person(db, "EPI-1")
    episodes = _episodes(db, person_id)
    disease = [e for e in episodes if e.episode_concept_id == DISEASE_EPISODE]
    rt = [e for e in episodes if e.episode_concept_id == RT_COURSE_EPISODE]
    assert len(disease) == 1
    courses = [e for e in rt if e.episode_parent_id == disease[0].episode_id]
    assert len(courses) == 1
    course = courses[0]
    plans = sorted(
        (e for e in rt if e.episode_parent_id == course.episode_id),
        key=lambda e: e.episode_start_date,
    )
    assert len(plans) == 2
    a, b = plans
    assert [a.episode_number, b.episode_number] == [1, 2]
    # the course spans A's start to the boost's planned end (two fractions)
    assert (b.episode_start_date - a.episode_start_date).days == BOOST_AFTER
    assert a.episode_end_date == planned_end_date(a.episode_start_date, 25)
    assert b.episode_end_date == planned_end_date(b.episode_start_date, 2)
    assert course.episode_start_date == a.episode_start_date
    assert course.episode_end_date == b.episode_end_date
    with db.factory() as session:
        field_plan = {
            e.episode_id: set(
                session.scalars(
                    select(EpisodeEvent.event_id).where(
                        EpisodeEvent.episode_id == e.episode_id
                    )
                )
            )
            for e in (course, a, b)
        }
        rx = read_prescriptions(session, [course.episode_id])[course.episode_id]
        metrics = read_course_metrics(session, [e.episode_id for e in rt])
        first = read_first_courses(
            session, select(Person.person_id).where(Person.person_id == person_id)
        )
        items = schedule(session, site_id, course.episode_end_date)
    # each plan's treatment is recorded under the course
    assert len(field_plan[a.episode_id]) == len(field_plan[b.episode_id]) == 1
    assert (
        field_plan[course.episode_id]
        == field_plan[a.episode_id] | (field_plan[b.episode_id])
    )
    assert rx.total_gy == pytest.approx(66.0)
    assert rx.fractions == 27
    assert rx.per_fraction_gy is None  # 2 Gy and 8 Gy: no one dose per fraction
    assert metrics
    assert {m.episode_id for m in metrics} == {course.episode_id}
    # the schedule anchors on the whole course
    assert [(f.start, f.end) for f in first] == [
        (course.episode_start_date, course.episode_end_date)
    ]
    mine = {i.timepoint: i for i in items if i.person_id == person_id}
    assert mine["baseline"].target_date == a.episode_start_date
    assert mine["eot"].target_date == b.episode_end_date
    assert mine["m3"].target_date == b.episode_end_date + datetime.timedelta(days=91)


def test_course_checks_pass_on_a_two_plan_course(db: Db, tmp_path: Path) -> None:
    folder = write_course(tmp_path, "EPI-2", 1812, boost_after_days=BOOST_AFTER)
    _consent(db, "EPI-2")
    assert run_import(db.factory, [folder], db.options()).courses == 1
    checks = {c.name: c for c in rt_checks()}
    with db.factory() as session:
        for name in (
            "rtCourseHasPrescription",
            "rtCourseHasDiseaseParent",
            "rtDoseMetricLinked",
            "rtEqd2WhenFractionsKnown",
            "rtDvhMonotone",
        ):
            result = run_check(session, checks[name])
            assert result.num_denominator_rows > 0, name
            assert result.num_violated_rows == 0, name


def test_re_sent_dose_keeps_one_course_episode(db: Db, tmp_path: Path) -> None:
    folder = write_course(tmp_path, "EPI-3", 1813, boost_after_days=BOOST_AFTER)
    _consent(db, "EPI-3")
    assert run_import(db.factory, [folder], db.options()).courses == 1
    person_id = _person(db, "EPI-3")
    before = _episodes(db, person_id)
    dose = pydicom.dcmread(folder / "RTDOSE_boost.dcm")
    dose.SeriesDescription = "re-sent"
    dose.save_as(folder / "RTDOSE_boost.dcm", enforce_file_format=True)
    assert run_import(db.factory, [folder], db.options()).courses == 1
    after = _episodes(db, person_id)
    assert [e.episode_id for e in after] == [e.episode_id for e in before]
    assert [e.episode_parent_id for e in after] == [e.episode_parent_id for e in before]
