"""rtDvhMonotone and rtEqd2WhenFractionsKnown on course-level metrics (issue 18.3).

A course of two plans on one frame is imported (``tests.etl.test_load_course``), so
the database holds plan metrics (IMAGE_FEATURE) and course-sum metrics (linked to the
RT course EPISODE). Both checks pass, and count the course metrics; a course metric
out of order, or a course metric without its EQD2, is a violation (rows no writer
produces: direct updates). Both backends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from etl.ingest.run import run_import
from etl.store.course_metrics import CourseMetric, read_course_metrics
from etl.store.course_rx import PRESCRIPTION_VOCAB
from omop import cdm
from omop.quality.rt_checks import rt_checks
from omop.quality.run import run_check
from omop.vocab.registry import our_concept_id
from tests.etl.ingest_db import Db, make_db
from tests.etl.test_course_dates import _consent
from tests.etl.test_load_course import _person, write_course


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("course_checks"))


@pytest.fixture(scope="module")
def person(db: Db, tmp_path_factory: pytest.TempPathFactory) -> int:
    folder = write_course(tmp_path_factory.mktemp("c"), "CQ-1", 1841)
    _consent(db, "CQ-1")
    assert run_import(db.factory, [folder], db.options()).courses == 1
    return _person(db, "CQ-1")


def _counts(s: Session, name: str) -> tuple[int, int]:
    check = {c.name: c for c in rt_checks()}[name]
    result = run_check(s, check)
    assert result.error is None, result.error
    return result.num_violated_rows, result.num_denominator_rows


def _course_metrics(s: Session, person_id: int) -> dict[tuple[str, str], CourseMetric]:
    episodes = s.scalars(
        select(cdm.Episode.episode_id).where(cdm.Episode.person_id == person_id)
    ).all()
    return {(m.structure, m.metric): m for m in read_course_metrics(s, episodes)}


def _set(s: Session, measurement_id: int, **values: object) -> None:
    s.execute(
        update(cdm.Measurement)
        .where(cdm.Measurement.measurement_id == measurement_id)
        .values(**values)
    )


def test_dvh_monotone_checks_course_metrics(db: Db, person: int) -> None:
    with db.factory() as s:
        metrics = _course_metrics(s, person)
        assert ("PTV", "D2%[Gy]") in metrics
        violated, pairs = _counts(s, "rtDvhMonotone")
        assert violated == 0
        # the course metrics alone are out of order: Max below D2
        _set(s, metrics["PTV", "Max[Gy]"].measurement_id, value_as_number=0.0)
        assert _counts(s, "rtDvhMonotone") == (1, pairs)
        s.rollback()
        # course pairs are counted: without the course link they leave the check
        for m in metrics.values():
            _set(s, m.measurement_id, meas_event_field_concept_id=0)
        violated, fewer = _counts(s, "rtDvhMonotone")
        assert violated == 0
        assert fewer < pairs
        s.rollback()


def test_eqd2_check_covers_course_metrics(db: Db, person: int) -> None:
    with db.factory() as s:
        metrics = _course_metrics(s, person)
        violated, physical = _counts(s, "rtEqd2WhenFractionsKnown")
        assert violated == 0
        course_physical = [
            m
            for (_, code), m in metrics.items()
            if code.endswith("[Gy]") and not code.startswith("EQD2 ")
        ]
        assert course_physical
        # the course-level EQD2 Mean of the heart is no longer a dose metric
        _set(
            s,
            metrics["Heart", "EQD2 Mean[Gy]"].measurement_id,
            measurement_source_concept_id=0,
        )
        assert _counts(s, "rtEqd2WhenFractionsKnown") == (1, physical)
        s.rollback()
        # without the course's prescribed fractions its metrics are not checked
        s.execute(
            update(cdm.Measurement)
            .where(
                cdm.Measurement.measurement_event_id == course_physical[0].episode_id,
                cdm.Measurement.measurement_source_concept_id
                == our_concept_id(PRESCRIPTION_VOCAB, "fractions"),
            )
            .values(value_as_number=0)
        )
        assert _counts(s, "rtEqd2WhenFractionsKnown") == (
            0,
            physical - len(course_physical),
        )
        s.rollback()
