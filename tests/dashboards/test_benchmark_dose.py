"""Dose benchmarking reads on both backends (the world's one imported course).

HUS-1001 has the small phantom at 60 Gy / 30 fractions; its Heart (``Sydän``) DVH
is stored. Truth: the DVH row's own mean (computed at load by the DVH engine) and,
for EQD2, the stored DVH converted with the course's fractions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from web_world import World, audited_session

from cohort.benchmark import queries_dose
from cohort.permissions import Action, scope_for
from cohort.users import get_user
from omop.ingest_tables import Dvh

HEART = {"site": "breast", "structure": "Heart", "metric": "Mean[Gy]"}


@pytest.fixture
def db(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    yield from audited_session(world, monkeypatch)


def _scope(session: Session, name: str) -> Any:
    return scope_for(session, get_user(session, name), Action.READ_AGGREGATES)


def _heart(session: Session) -> Dvh:
    return session.scalars(select(Dvh).where(Dvh.tg263_name == "Heart")).one()


def test_schemes_and_distribution_for_own_centre(db: Session) -> None:
    scope = _scope(db, "clinician-hus")
    schemes = queries_dose.dose_schemes(db, scope, **HEART)
    assert schemes.to_dict("records") == [{"scheme": "60 Gy/30", "patients": 1}]
    df = queries_dose.dose_distribution(db, scope, **HEART, scheme="60 Gy/30")
    row = df.to_dict("records")[0]
    assert (row["centre"], row["patients"]) == ("HUS", 1)
    assert row["median"] == pytest.approx(_heart(db).mean_gy, abs=1e-6)


def test_eqd2_distribution_uses_stored_eqd2(db: Session) -> None:
    from etl.dose.metrics import evaluate
    from etl.dose.radiobiology import dvh_to_eqd2
    from etl.store.dvh_rows import dvh_from_row

    df = queries_dose.dose_distribution(db, _scope(db, "clinician-hus"), **HEART,
                                        eqd2=True)  # fmt: skip
    truth = evaluate(dvh_to_eqd2(dvh_from_row(_heart(db)), 30, 3.0), "Mean[Gy]")
    assert df["median"].iloc[0] == pytest.approx(truth, rel=1e-6)


def test_viewer_sees_other_centre_suppressed(db: Session) -> None:
    df = queries_dose.dose_distribution(db, _scope(db, "viewer-tays"), **HEART)
    rows = df.to_dict("records")
    assert [r["centre"] for r in rows] == ["centre-1"]
    assert all(v is None or (isinstance(v, float) and math.isnan(v))
               for k, v in rows[0].items() if k != "centre")  # fmt: skip
    band = queries_dose.dvh_band(db, _scope(db, "viewer-tays"), site="breast",
                                 structure="Heart")  # fmt: skip
    assert band.empty  # one HUS patient: below 5, left out


def test_metric_nobody_has_gives_empty(db: Session) -> None:
    scope = _scope(db, "clinician-hus")
    df = queries_dose.dose_distribution(db, scope, site="breast", structure="A_LAD",
                                        metric="Max[Gy]")  # fmt: skip
    assert df.empty


def test_dvh_band_of_own_centre(db: Session) -> None:
    band = queries_dose.dvh_band(db, _scope(db, "clinician-hus"), site="breast",
                                 structure="Heart")  # fmt: skip
    assert set(band["centre"]) == {"HUS"}
    assert set(band["patients"]) == {1}
    first = band.iloc[0]
    assert (first["dose_gy"], first["median"]) == (0.0, pytest.approx(100.0))
    assert np.all(np.diff(band["median"].to_numpy()) <= 1e-9)
    assert band["median"].iloc[-1] == pytest.approx(0.0, abs=1e-6)
    assert band["dose_gy"].max() >= _heart(db).max_gy


def test_control_chart_needs_two_own_patients(db: Session) -> None:
    df = queries_dose.metric_over_time(db, _scope(db, "clinician-hus"), **HEART)
    assert isinstance(df, pd.DataFrame)
    assert df.empty
