"""The bulk --into-db path writes exactly the rows of the per-row owners' writers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from cohort.simulate.bulk_load import load_cohort_bulk
from cohort.simulate.national import simulate_national
from cohort.simulate.params import SimulationParams
from cohort.simulate.run import load_cohort
from etl.deid.keys import new_key
from omop.cdm import ConditionOccurrence, Observation, Person
from omop.cohort_tables import Enrolment
from omop.database import upgrade
from omop.engine import make_engine, session_factory
from omop.filestore import FileStore
from omop.ingest_tables import Dvh, IngestDataset
from tests.cohort.simulate_compare import table_rows
from tests.conftest import BACKENDS, _new_url


@pytest.fixture(scope="module")
def cohort():  # type: ignore[no-untyped-def]
    return simulate_national(SimulationParams(centres=2, patients=3, seed=1))


@pytest.fixture(params=BACKENDS)
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    return (
        _new_url(request, request.param, tmp_path),
        _new_url(request, request.param, tmp_path),
    )


def _engine(url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    upgrade(engine)
    return engine


def test_bulk_rows_equal_per_row_writers(cohort, urls, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keys = {p.code: new_key(p.code) for p in cohort.practices}
    store = FileStore(tmp_path / "files")
    slow, fast = _engine(urls[0]), _engine(urls[1])
    try:
        a = load_cohort(session_factory(slow), cohort, keys=keys, store=store, batch=2)
        b = load_cohort_bulk(
            session_factory(fast), cohort, keys=keys, store=store, batch=2
        )
        assert a == b
        assert b.persons == len(cohort.patients)
        assert b.datasets == sum(p.consented for p in cohort.patients) > 0
        want, got = table_rows(slow), table_rows(fast)
        assert {"dvh", "dvh_sampled", "survey_conduct", "condition_occurrence"} <= set(
            want
        )
        assert got == want
        # links by key: each grade observation of an adverse event points to a
        # condition of the same person and term; each DVH to its person's dataset
        with session_factory(fast)() as s:
            pairs = s.execute(
                select(func.count())
                .select_from(Observation)
                .join(
                    ConditionOccurrence,
                    (ConditionOccurrence.condition_occurrence_id
                     == Observation.observation_event_id)
                    & (ConditionOccurrence.person_id == Observation.person_id)
                    & (ConditionOccurrence.condition_source_concept_id
                       == Observation.observation_source_concept_id),
                )
            ).scalar()  # fmt: skip
            assert pairs == sum(want["condition_occurrence"].values())
            mismatched = s.execute(
                select(func.count())
                .select_from(Dvh)
                .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
                .where(IngestDataset.person_id != Dvh.person_id)
            ).scalar()
            assert mismatched == 0
    finally:
        slow.dispose()
        fast.dispose()


def test_rerun_skips_loaded_patients(cohort, urls, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keys = {p.code: new_key(p.code) for p in cohort.practices}
    store = FileStore(tmp_path / "files")
    engine = _engine(urls[0])
    try:
        factory = session_factory(engine)
        first = load_cohort_bulk(factory, cohort, keys=keys, store=store, batch=4)
        again = load_cohort_bulk(factory, cohort, keys=keys, store=store, batch=4)
        assert again.persons == 0
        assert again.skipped == first.persons == len(cohort.patients)
        with factory() as s:
            assert s.scalar(select(func.count()).select_from(Person)) == first.persons
    finally:
        engine.dispose()


def test_killed_batch_leaves_no_half_patient(cohort, urls, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A failure inside a batch rolls the whole batch back; a re-run completes it."""
    keys = {p.code: new_key(p.code) for p in cohort.practices}
    store = FileStore(tmp_path / "files")
    engine = _engine(urls[0])
    broken = dict(keys)
    late = cohort.patients[-1].centre
    del broken[late]  # the batch holding that centre's patients fails midway
    try:
        factory = session_factory(engine)
        with pytest.raises(KeyError):
            load_cohort_bulk(factory, cohort, keys=broken, store=store, batch=100)
        with factory() as s:
            assert s.scalar(select(func.count()).select_from(Person)) == 0
            assert s.scalar(select(func.count()).select_from(Enrolment)) == 0
        done = load_cohort_bulk(factory, cohort, keys=keys, store=store, batch=100)
        assert done.persons == len(cohort.patients)
    finally:
        engine.dispose()
