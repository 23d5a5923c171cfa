"""Cumulative incidence against hand-worked examples and lifelines called directly."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter

from cohort.benchmark import BenchmarkInputError, cumulative_incidence


def test_hand_worked_competing_risks_without_ties():
    # t: 1 endpoint, 2 death, 3 endpoint, 4 censored, 5 death, 6 endpoint.
    # AJ: 1/6; S = 4/6 after 2; + 4/6 * 1/4 = 2/6 at 3; S = 3/6, then 1/4 after 5;
    # + 1/4 * 1/1 at 6 -> 7/12. KM with deaths censored: 5/6, * 3/4, * 0 -> 1 - KM = 1.
    t = cumulative_incidence([1, 2, 3, 4, 5, 6], [1, 2, 1, 0, 2, 1], horizon_days=10)
    by_day = t.set_index("days")
    assert by_day.loc[1, "aalen_johansen"] == pytest.approx(1 / 6)
    assert by_day.loc[3, "aalen_johansen"] == pytest.approx(2 / 6)
    assert by_day.loc[10, "aalen_johansen"] == pytest.approx(7 / 12)
    assert by_day.loc[3, "one_minus_km"] == pytest.approx(1 - 5 / 6 * 3 / 4)
    assert by_day.loc[10, "one_minus_km"] == pytest.approx(1.0)
    assert by_day["at_risk"].tolist() == [6, 6, 5, 4, 3, 2, 1, 0]
    assert t.attrs["n_events"] == 3 and t.attrs["n_competing"] == 2
    assert t.attrs["note"] is None


def test_hand_worked_with_tied_times():
    # Day 2: endpoint, death and a censoring (censored still at risk): 1/6, S = 4/6;
    # day 5: two endpoints among 3 at risk: + 4/6 * 2/3 -> 1/6 + 4/9 = 11/18.
    t = cumulative_incidence([2, 2, 2, 5, 5, 8], [1, 2, 0, 1, 1, 2], horizon_days=6)
    by_day = t.set_index("days")
    assert by_day.loc[2, "aalen_johansen"] == pytest.approx(1 / 6, abs=1e-9)
    assert by_day.loc[6, "aalen_johansen"] == pytest.approx(11 / 18, abs=1e-9)
    assert by_day.loc[6, "one_minus_km"] == pytest.approx(1 - 5 / 6 * 1 / 3)


def test_matches_lifelines_on_a_simulated_cohort():
    rng = np.random.default_rng(11)
    n = 400
    t_end = rng.exponential(500, n)
    t_death = rng.exponential(900, n)
    t_cens = rng.uniform(100, 700, n)
    dur = np.round(np.minimum.reduce([t_end, t_death, t_cens]), 3) + 0.5
    ev = np.select([t_end <= np.minimum(t_death, t_cens), t_death <= t_cens], [1, 2], 0)
    got = cumulative_incidence(dur, ev, horizon_days=365)
    aj = AalenJohansenFitter(seed=1).fit(dur, ev, event_of_interest=1)
    km = KaplanMeierFitter().fit(dur, ev == 1)
    last = got.iloc[-1]
    assert last["days"] == 365
    assert last["aalen_johansen"] == pytest.approx(
        float(aj.predict(365.0, interpolate=False)), abs=1e-9
    )
    ci = aj.confidence_interval_.loc[:365.0].iloc[-1]
    assert last["aj_lower_95"] == pytest.approx(ci.min(), abs=1e-9)
    assert last["aj_upper_95"] == pytest.approx(ci.max(), abs=1e-9)
    assert last["one_minus_km"] == pytest.approx(1 - float(km.predict(365.0)))
    assert last["one_minus_km"] > last["aalen_johansen"]


def test_global_random_state_is_untouched():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    cumulative_incidence([2, 2, 3], [1, 2, 1])
    assert np.random.random() == expected


def test_no_events_gives_zeros_with_a_note_and_empty_gives_nan():
    t = cumulative_incidence([10, 20, 30], [0, 2, 0])
    assert (t["aalen_johansen"] == 0).all() and (t["one_minus_km"] == 0).all()
    assert "no events" in t.attrs["note"]
    empty = cumulative_incidence([], [])
    assert empty["aalen_johansen"].isna().all()
    assert "no patients" in empty.attrs["note"]
    one = cumulative_incidence([3], [1], horizon_days=6)
    assert one["aalen_johansen"].iloc[-1] == 1.0


def test_bad_input_is_named():
    with pytest.raises(BenchmarkInputError, match="durations"):
        cumulative_incidence([-1], [1])
    with pytest.raises(BenchmarkInputError, match="events"):
        cumulative_incidence([1], [0.5])
    with pytest.raises(BenchmarkInputError, match="lengths"):
        cumulative_incidence([1, 2], [1])


def test_another_centres_curve_ends_below_five_at_risk_without_numbers():
    """Days 1..8, every patient an event: 8, 7, ... at risk; cut once below 5."""
    from cohort.benchmark.queries_outcome import _coarsened

    curve = cumulative_incidence(range(1, 9), [1] * 8, 365)
    shown = _coarsened(curve)
    # at days 0..4 there are 8, 8, 7, 6, 5 at risk: estimates kept; from day 5 cut
    assert list(curve["at_risk"]) == [8, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert list(shown["aalen_johansen"][:5]) == [0.0, 1 / 8, 2 / 8, 3 / 8, 4 / 8]
    assert shown["aalen_johansen"][5:].isna().all()
    assert shown["km_upper_95"][5:].isna().all()
    assert shown["at_risk"].isna().all()
    assert list(shown["days"]) == list(curve["days"])
    assert shown.attrs == curve.attrs
