"""Erasure of a person with course-level dose metrics (issue 18, part 3).

Two persons each get a course of two plans on one frame of reference through
``import``, so each has dose metrics linked to the RT course EPISODE; after
``rtcohort withdraw --erase`` of one, none of its course metrics (and no identifier)
is left, and the other's are untouched.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etl.deid.pseudonymise import pseudonym
from etl.store.course_metrics import COURSE_SUM_LABEL, read_course_metrics
from omop.cdm import Episode, Measurement, Person
from omop.engine import session_factory
from tests.cohort.test_erasure_rt import (
    Env,
    _consent,
    _database_hits,
    _identifiers,
    _ok,
    env,
)
from tests.etl.test_load_course import write_course

__all__ = ["env"]  # the fixture, used by name


def _course_metrics(session: Session, pseudo: str) -> int:
    person = session.scalar(select(Person).where(Person.person_source_value == pseudo))
    if person is None:
        return 0
    episodes = session.scalars(
        select(Episode.episode_id).where(Episode.person_id == person.person_id)
    ).all()
    return len(read_course_metrics(session, episodes))


def _all_course_sums(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Measurement)
            .where(Measurement.value_source_value.like(f"{COURSE_SUM_LABEL}%"))
        )
        or 0
    )


def test_erasure_removes_course_level_metrics(env: Env) -> None:
    src = env.root / "src"
    a = write_course(src / "a", "ER-K-1", 621)
    write_course(src / "b", "ER-K-2", 622)
    _consent(env, "ER-K-1", "consented")
    _consent(env, "ER-K-2", "consented")
    assert "datasets loaded 4" in _ok(["import", str(src), *env.k])
    ids = _identifiers(env, "ER-K-1", [a])
    erased, kept = pseudonym(env.key, "ER-K-1"), pseudonym(env.key, "ER-K-2")
    engine = env.engine()
    with session_factory(engine)() as session:
        before_erased = _course_metrics(session, erased)
        before_kept = _course_metrics(session, kept)
        assert before_erased > 0
        assert before_kept > 0
        assert _all_course_sums(session) == before_erased + before_kept
    engine.dispose()

    out = _ok(["withdraw", "ER-K-1", *env.k, "--erase"])
    assert "check: no row of the person remains" in out
    engine = env.engine()
    with session_factory(engine)() as session:
        assert _course_metrics(session, erased) == 0
        assert _course_metrics(session, kept) == before_kept
        assert _all_course_sums(session) == before_kept
    engine.dispose()
    assert _database_hits(env, ids) == set()
