"""The scoped benchmark reads on both backends, on data built by the writers.

Expected values are counted by hand from the world (web_world.PATIENTS and
bench_world): HUS has four persons (two consented, one declined, one consented then
withdrawn), TAYS one consented person.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator
from typing import Any

import pytest
from bench_world import TODAY, add_outcomes
from sqlalchemy import select
from sqlalchemy.orm import Session
from web_world import World, audited_session

from cohort.benchmark import queries, queries_quality
from cohort.errors import PermissionDeniedError
from cohort.permissions import Action, scope_for
from cohort.users import get_user
from omop.cohort_tables import AuditRecord

START, END = datetime.date(2024, 1, 1), datetime.date(2025, 12, 31)


@pytest.fixture(scope="module")
def bench(world: World) -> World:
    return add_outcomes(world)


@pytest.fixture
def db(bench: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    yield from audited_session(bench, monkeypatch)


def _scope(session: Session, name: str, action: Action = Action.READ_AGGREGATES) -> Any:
    return scope_for(session, get_user(session, name), action)


def _rows(df: Any) -> list[dict[str, Any]]:
    return [
        {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in r.items()
        }
        for r in df.to_dict("records")
    ]


def test_funnel_clinician_sees_own_centre_counts(db: Session) -> None:
    df = queries.recruitment_funnel(
        db, _scope(db, "clinician-hus"), start=START, end=END
    )
    assert _rows(df) == [
        {"centre": "HUS", "eligible": 4, "approached": 4, "consented": 3,
         "declined": 1, "withdrawn": 1}
    ]  # fmt: skip


def test_funnel_viewer_sees_own_centre_and_others_suppressed(db: Session) -> None:
    df = queries.recruitment_funnel(db, _scope(db, "viewer-tays"), start=START, end=END)
    rows = {r["centre"]: r for r in _rows(df)}
    assert set(rows) == {"TAYS", "centre-1"}
    assert rows["TAYS"] == {"centre": "TAYS", "eligible": 1, "approached": 1,
                            "consented": 1, "declined": 0, "withdrawn": 0}  # fmt: skip
    # HUS counts are all below 5: every cell hidden.
    assert all(rows["centre-1"][k] is None for k in queries.FUNNEL_STAGES)


def test_funnel_period_excludes_earlier_first_records(db: Session) -> None:
    later = datetime.date(2025, 1, 11)
    df = queries.recruitment_funnel(
        db, _scope(db, "clinician-hus"), start=later, end=END
    )
    assert df.empty  # every first record is on 2025-01-10


def test_recruitment_over_time_by_month(db: Session) -> None:
    df = queries.recruitment_over_time(
        db, _scope(db, "clinician-hus"), start=START, end=END
    )
    assert _rows(df) == [{"centre": "HUS", "month": "2025-01", "consented": 3}]


def test_completion_counts_prom_and_toxicity(db: Session) -> None:
    df = queries.completion_by_timepoint(db, _scope(db, "clinician-hus"))
    got = {
        (r["kind"], r["timepoint"]): (r["expected"], r["completed"]) for r in _rows(df)
    }
    # PROM: HUS-1002 completed m3; toxicity: HUS-1001 graded at m3 of 2 consented.
    assert got == {("prom", "m3"): (1, 1), ("toxicity", "m3"): (2, 1)}
    assert df.loc[df["kind"] == "toxicity", "rate"].item() == pytest.approx(0.5)


def test_followup_status(db: Session) -> None:
    hus = queries.followup_status(db, _scope(db, "clinician-hus"), today=TODAY)
    assert _rows(hus) == [{"centre": "HUS", "alive": 1, "dead": 1, "lost": 0}]
    admin = queries.followup_status(db, _scope(db, "web-admin"), today=TODAY)
    rows = {r["centre"]: r for r in _rows(admin)}
    assert set(rows) == {"HUS", "TAYS"}  # an admin names every centre
    # Every count is below 5 (zeros too): all withheld beside other centres.
    for code in ("HUS", "TAYS"):
        assert rows[code] == {"centre": code, "alive": None, "dead": None, "lost": None}


def test_structures_found_once_and_missing(db: Session) -> None:
    df = queries_quality.structure_completeness(
        db, _scope(db, "clinician-hus"), site="breast"
    )
    got = {r["structure"]: (r["patients"], r["once"], r["more_than_once"], r["missing"])
           for r in _rows(df)}  # fmt: skip
    # Two consented HUS patients; only HUS-1001 has images (Sydän -> Heart,
    # Lunga vä -> Lung_L).
    assert got == {"Heart": (2, 1, 0, 1), "A_LAD": (2, 0, 0, 2),
                   "Lung_L": (2, 1, 0, 1), "Lung_R": (2, 0, 0, 2)}  # fmt: skip


def test_structure_matrix_of_own_patients_is_audited(db: Session, bench: World) -> None:
    scope = _scope(db, "clinician-hus", Action.READ_PATIENTS)
    df = queries_quality.structure_matrix(db, scope, site="breast")
    rows = {r["pseudonym"]: r for r in _rows(df)}
    assert set(rows) == {bench.pseudonyms["HUS-1001"], bench.pseudonyms["HUS-1002"]}
    first = rows[bench.pseudonyms["HUS-1001"]]
    assert (first["Heart"], first["Lung_L"], first["A_LAD"]) == (
        "once",
        "once",
        "missing",
    )
    actions = db.scalars(select(AuditRecord.action)).all()
    assert "benchmark.structure_matrix" in actions


def test_structure_matrix_refused_to_a_viewer(db: Session) -> None:
    with pytest.raises(PermissionDeniedError):
        queries_quality.structure_matrix(
            db, _scope(db, "viewer-tays", Action.READ_PATIENTS), site="breast"
        )


def test_unknown_site_is_a_plain_error(db: Session) -> None:
    with pytest.raises(ValueError, match="no required structures"):
        queries_quality.structure_completeness(
            db, _scope(db, "clinician-hus"), site="knee"
        )


def test_unmapped_names_labelled_for_a_viewer(db: Session) -> None:
    from etl.store.report import unmapped_names

    truth = [u for u in unmapped_names(db) if u.centre == "HUS"]
    clinician = queries_quality.unmapped_structures(db, _scope(db, "clinician-hus"))
    assert sorted(map(tuple, clinician.to_records(index=False).tolist())) == sorted(
        ("HUS", u.roi_name, u.structures) for u in truth
    )
    viewer = queries_quality.unmapped_structures(db, _scope(db, "viewer-tays"))
    assert "HUS" not in set(viewer["centre"])


def test_researcher_is_refused_aggregates_and_audited(db: Session) -> None:
    with pytest.raises(PermissionDeniedError):
        queries.followup_status(db, _scope(db, "researcher"), today=TODAY)


def test_every_read_writes_an_audit_record(db: Session) -> None:
    scope = _scope(db, "viewer-tays")
    queries.recruitment_funnel(db, scope, start=START, end=END)
    queries_quality.quarantine_counts(db, scope)
    queries_quality.qa_warnings(db, scope)
    actions = db.scalars(
        select(AuditRecord.action).where(AuditRecord.actor == "viewer-tays")
    ).all()
    assert {"benchmark.recruitment", "benchmark.quarantine",
            "benchmark.qa_warnings"} <= set(actions)  # fmt: skip
