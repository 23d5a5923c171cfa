"""Outcome benchmarking reads on both backends (world + bench_world outcomes).

HUS-1001 (the only patient with an RT course, from 2024-01-01 shifted) has a grade 1
Dry mouth at m3: no grade >= 2 event, so the curve stays at 0 with a note. HUS-1002
has one QLQ-C30 at m3 (every item 1, global health 7): no baseline, so no
deterioration; its m3 mean is its own score.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bench_world import add_outcomes
from sqlalchemy.orm import Session
from web_world import World, audited_session

from cohort.benchmark import queries_outcome
from cohort.errors import PermissionDeniedError
from cohort.permissions import Action, scope_for
from cohort.users import get_user


@pytest.fixture(scope="module")
def bench(world: World) -> World:
    return add_outcomes(world)


@pytest.fixture
def db(bench: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    yield from audited_session(bench, monkeypatch)


def _scope(session: Session, name: str) -> Any:
    return scope_for(session, get_user(session, name), Action.READ_AGGREGATES)


def test_endpoint_without_events_gives_zero_curve_and_note(db: Session) -> None:
    df = queries_outcome.toxicity_incidence(
        db, _scope(db, "clinician-hus"), site="breast", term="Dry mouth"
    )
    assert set(df["centre"]) == {"HUS"}
    assert (df["aalen_johansen"] == 0).all()
    assert "HUS" in df.attrs["notes"]


def test_viewer_gets_no_curve_of_a_small_other_centre(db: Session) -> None:
    df = queries_outcome.toxicity_incidence(
        db, _scope(db, "viewer-tays"), site="breast", term="Dry mouth"
    )
    assert df.empty  # HUS: 1 patient with a course (< 5); TAYS: none


def test_prom_trajectory_of_own_centre(db: Session) -> None:
    df = queries_outcome.prom_trajectory(db, _scope(db, "clinician-hus"), site="breast")
    ql = df[(df["scale"] == "QL2") & (df["timepoint"] == "m3")].iloc[0]
    assert (ql["centre"], int(ql["n"])) == ("HUS", 1)
    assert float(ql["mean"]) == pytest.approx(100.0)  # items 29, 30 answered 7
    det = queries_outcome.prom_deterioration(
        db, _scope(db, "clinician-hus"), site="breast"
    )
    assert det.empty or (det["n"] == 0).all()


def test_prom_of_small_other_centre_left_out_for_viewer(db: Session) -> None:
    df = queries_outcome.prom_trajectory(db, _scope(db, "viewer-tays"), site="breast")
    assert "centre-1" not in set(df.get("centre", []))


def test_researcher_refused(db: Session) -> None:
    with pytest.raises(PermissionDeniedError):
        queries_outcome.prom_trajectory(db, _scope(db, "researcher"), site="breast")
