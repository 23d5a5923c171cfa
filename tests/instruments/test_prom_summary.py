"""The QLQ-C30 summary ``prom_scale_score`` kept by its writers (both backends).

Each state of the summary, after storing, correcting and erasing through the
production functions, is compared with the same figures computed independently from
:func:`instruments.store.read_prom_scores` (every questionnaire's scores in Python);
the migration's back-fill (0013, its own copy of the SQL and concept ids) must give
the rows the writers keep.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort.erasure import erase_person, person_tables
from instruments.fhir import PSEUDONYM_SYSTEM, PromResponse, SubjectIdentifier
from instruments.registry import get_instrument
from instruments.store import Assessment, StoreOutcome, read_prom_scores, store_prom
from instruments.store.prom_summary import refresh_prom_summary
from omop import cdm
from omop.summary_tables import PromScaleScore
from omop.vocab.registry import our_concept_id
from tests.instruments.store_helpers import add_person as _person
from tests.instruments.store_helpers import qlq_response

SCALES = len(get_instrument("QLQ-C30").spec.output_codes)
Row = tuple[int, str, int, int, float, float | None]
MIGRATION = (
    Path(__file__).parents[2]
    / "omop/migrations/versions/0013_prom_summary_dvh_index.py"
)


def _response(rid: str, day: int, **values: int) -> PromResponse:
    subject = SubjectIdentifier(PSEUDONYM_SYSTEM, "P")
    return qlq_response(
        rid, subject, datetime(2024, 3, day, 10, 0, tzinfo=UTC), **values
    )


def _stored(session: Session) -> set[Row]:
    p = PromScaleScore
    return {
        (int(a), str(b), int(c), int(d), round(float(e), 9),
         None if f is None else round(float(f), 9))
        for a, b, c, d, e, f in session.execute(
            select(p.person_id, p.timepoint, p.scale_concept_id, p.n_scores,
                   p.score, p.baseline_score)
        )
    }  # fmt: skip


def _expected(session: Session) -> set[Row]:
    """Computed from every questionnaire read back in Python."""
    frame = read_prom_scores(session)
    codes = get_instrument("QLQ-C30").spec.output_codes
    cells: dict[tuple[int, str, str], list[float]] = {}
    for _, survey in frame.iterrows():
        for code in codes:
            value = survey[code]
            if isinstance(value, float) and not math.isnan(value):
                key = (int(survey["person_id"]), str(survey["timepoint"]), code)
                cells.setdefault(key, []).append(value)
    out = set()
    for (pid, timepoint, code), values in cells.items():
        base = cells.get((pid, "baseline", code))
        out.add(
            (pid, timepoint, our_concept_id("QLQ-C30", code), len(values),
             round(max(values), 9), None if base is None else round(max(base), 9))
        )  # fmt: skip
    return out


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0013", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _backfilled(session: Session) -> set[Row]:
    rows: Any = session.execute(_migration()._backfill_rows()).all()
    return {
        (int(a), str(b), int(c), int(d), round(float(e), 9),
         None if f is None else round(float(f), 9))
        for a, b, c, d, e, f in rows
    }  # fmt: skip


def test_writers_keep_the_summary_equal_to_the_scores(session: Session) -> None:
    first, second = _person(session, "P-1"), _person(session, "P-2")
    # P-2's follow-up comes before its baseline: the baseline reaches the m3 rows.
    store_prom(session, Assessment(second, "m3", 0), _response("b-m3", 12, q1=3))
    assert {r[5] for r in _stored(session)} == {None}
    store_prom(session, Assessment(second, "baseline", 0), _response("b-0", 2))
    store_prom(session, Assessment(first, "baseline", 0), _response("a-0", 1))
    store_prom(session, Assessment(first, "m3", 0), _response("a-m3", 11, q10=4))
    rows = _stored(session)
    assert rows == _expected(session)
    assert len(rows) == 2 * 2 * SCALES  # 2 persons x 2 timepoints x every scale
    assert all(r[5] is not None for r in rows)
    # A correction replaces the baseline's scores on every row of the person.
    _, outcome = store_prom(
        session, Assessment(first, "baseline", 0), _response("a-0", 1, q10=3),
        correction_reason="typo", actor="dm",
    )  # fmt: skip
    assert outcome is StoreOutcome.CORRECTED
    assert _stored(session) != rows
    assert _stored(session) == _expected(session) == _backfilled(session)
    # Two questionnaires at one timepoint: counted, for the reads to refuse.
    store_prom(session, Assessment(second, "m3", 0), _response("b-m3-2", 13, q1=2))
    assert {r[3] for r in _stored(session) if r[0] == second and r[1] == "m3"} == {2}
    assert _stored(session) == _expected(session) == _backfilled(session)
    # Recomputing everything changes nothing.
    before = _stored(session)
    refresh_prom_summary(session, None)
    assert _stored(session) == before


def test_erasure_deletes_the_persons_summary_rows(session: Session) -> None:
    assert "prom_scale_score" in person_tables()
    gone, kept = _person(session, "P-1"), _person(session, "P-2")
    for pid in (gone, kept):
        store_prom(session, Assessment(pid, "baseline", 0), _response(f"{pid}", 1))
    report = erase_person(session, gone)
    assert report.rows_by_table["prom_scale_score"] == SCALES
    assert {r[0] for r in _stored(session)} == {kept}
    assert _stored(session) == _expected(session)


@pytest.mark.parametrize("persons", ["ids", "selection"])
def test_refresh_of_some_persons_leaves_the_others(
    session: Session, persons: str
) -> None:
    one, two = _person(session, "P-1"), _person(session, "P-2")
    for pid in (one, two):
        store_prom(session, Assessment(pid, "baseline", 0), _response(f"{pid}", 1))
    before = _stored(session)
    chosen: Any = (
        [one] if persons == "ids"
        else select(cdm.Person.person_id).where(cdm.Person.person_id == one)
    )  # fmt: skip
    refresh_prom_summary(session, chosen)
    assert _stored(session) == before


def test_concurrent_questionnaires_of_one_person_keep_the_summary(
    fresh_url: str,
) -> None:
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory

    if not fresh_url.startswith("postgresql"):
        pytest.skip("SQLite refuses a second writer at once (database is locked)")
    engine = make_engine(fresh_url, pool_size=8, max_overflow=0)
    try:
        upgrade(engine)
        factory = session_factory(engine)
        with factory.begin() as s:
            pid = _person(s, "P-1")
        forms = [("baseline", 1), ("m3", 11), ("m6", 21), ("m12", 25)]
        barrier = threading.Barrier(len(forms))
        errors: list[BaseException] = []

        def store(timepoint: str, day: int) -> None:
            barrier.wait()
            try:
                with factory.begin() as s:
                    store_prom(
                        s, Assessment(pid, timepoint, 0),
                        _response(timepoint, day, q1=day % 4 + 1),
                    )  # fmt: skip
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=store, args=f) for f in forms]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with factory() as s:
            rows = _stored(s)
            assert rows == _expected(s)
            assert len(rows) == len(forms) * SCALES
            assert all(r[5] is not None for r in rows)
    finally:
        engine.dispose()


def _frame_trajectory(session: Session) -> Any:
    """The trajectory of every score read back in Python (the frame rule)."""
    from cohort.benchmark.prom import trajectory

    wide = read_prom_scores(session)
    codes = list(get_instrument("QLQ-C30").spec.output_codes)
    long = wide.melt(["person_id", "timepoint"], codes, var_name="scale",
                     value_name="score").dropna(subset=["score"])  # fmt: skip
    long = long.rename(columns={"person_id": "pseudonym"}).assign(centre="C")
    return trajectory(long, by=("centre",))


def test_trajectory_from_the_summary_counts_every_score(session: Session) -> None:
    import pandas as pd
    from sqlalchemy import literal

    from cohort.benchmark.prom_sql import trajectory_by_centre

    first, second = _person(session, "P-1"), _person(session, "P-2")
    store_prom(session, Assessment(first, "baseline", 0), _response("a-0", 1, q1=2))
    store_prom(session, Assessment(second, "baseline", 0), _response("b-0", 2, q9=3))
    store_prom(session, Assessment(first, "m3", 0), _response("a-m3", 11, q10=4))
    persons = select(cdm.Person.person_id, literal(7))
    got = trajectory_by_centre(session, persons, {7: "C"})
    want = _frame_trajectory(session)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-12)
    assert got.loc[got["timepoint"] == "baseline", "n"].eq(2).all()
    # A second questionnaire at m3: the summary keeps one score per cell, the
    # trajectory counts both (read from the scores).
    store_prom(session, Assessment(first, "m3", 0), _response("a-m3-2", 12, q10=2))
    got = trajectory_by_centre(session, persons, {7: "C"})
    pd.testing.assert_frame_equal(
        got, _frame_trajectory(session), check_dtype=False, rtol=1e-12
    )
    assert got.loc[got["timepoint"] == "m3", "n"].eq(2).all()
