"""Counting checks on shared scans (omop.quality.batch) gives the one-by-one results.

On the production-built DQD patient (:func:`tests.omop.quality.dqd_world.build_world`)
and on each backend, every check of ``db quality`` is run both ways; a mutation then
makes several checks of one table fail at once, and a scan whose SQL fails leaves each
of its checks to run (and fail) on its own.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from omop import cdm
from omop.quality import Check, all_checks
from omop.quality.batch import plain_count, run_batched
from omop.quality.dqd_common import count_sql
from omop.quality.run import CheckResult, run_checks
from tests.etl.ingest_db import Db
from tests.omop.quality.dqd_world import build_world


@pytest.fixture(scope="module")
def world(db: Db, tmp_path_factory: pytest.TempPathFactory) -> int:
    return build_world(db, tmp_path_factory.mktemp("dqd-batch"))


def _outcomes(results: list[CheckResult]) -> list[tuple[str, str, int, int]]:
    return [
        (r.check.check_id, r.status, r.num_violated_rows, r.num_denominator_rows)
        for r in results
    ]


def _compare(s: Session) -> list[tuple[str, str, int, int]]:
    checks = all_checks(s.get_bind().dialect.name)
    batched = run_checks(s, checks)
    alone = run_checks(s, checks, batch=False)
    assert _outcomes(batched) == _outcomes(alone)
    return _outcomes(batched)


def test_plain_count_splits_count_sql() -> None:
    where = "t.value_as_number > :bound"
    scan, count = plain_count(count_sql("measurement", where), {"bound": 5, "x": 1})  # type: ignore[misc]
    assert scan == ("measurement", "")
    assert count == (where, (("bound", 5),))
    join = " JOIN person p ON p.person_id = t.person_id"
    assert plain_count(count_sql("measurement", "t.x = 1", join), {}) == (
        ("measurement", join),
        ("t.x = 1", ()),
    )
    exists = count_sql("person", "NOT EXISTS (SELECT 1 FROM death d)")
    assert plain_count(exists, {}) is None
    assert plain_count("SELECT COUNT(*) FROM (SELECT 1) v", {}) is None


def test_batched_equals_one_by_one(db: Db, world: int) -> None:
    with db.factory() as s:
        outcomes = _compare(s)
        assert not [o for o in outcomes if o[1] == "error"]
        s.execute(  # implausibly high values: plausibleValueHigh checks fail
            update(cdm.Measurement)
            .where(cdm.Measurement.person_id == world)
            .values(value_as_number=1e9)
        )
        mutated = _compare(s)
        assert mutated != outcomes
        s.rollback()


def test_failing_scan_leaves_checks_alone(db: Db, world: int) -> None:
    def check(name: str, where: str) -> Check:
        return Check(
            name=name,
            level="FIELD",
            table="person",
            field="person_id",
            numerator=count_sql("person", where),
            denominator=count_sql("person"),
            threshold=0.0,
            category="Conformance",
        )

    good = check("good", "t.person_id IS NULL")
    bad = check("bad", "t.no_such_column IS NULL")
    with db.factory() as s:
        persons = len(s.scalars(select(cdm.Person.person_id)).all())
        first, second = run_batched(s, [good, bad])
        assert first.passed and first.num_denominator_rows == persons
        assert second.is_error and "no_such_column" in (second.error or "")
