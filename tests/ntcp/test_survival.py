from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ntcp.errors import DegenerateOutcomeError, ModelSpecError
from ntcp.survival import (
    CensorAt,
    EventCode,
    competing_risks_outcome,
    cumulative_incidence,
    event_indicator,
    fit_cox,
    kaplan_meier,
)
from ntcp.validation import c_index


def test_competing_risks_outcome_rules():
    start = ["2024-01-01"] * 4
    d, s = competing_risks_outcome(
        start,
        ["2024-02-01", None, "2024-06-01", None],
        [None, "2024-03-01", "2024-04-01", None],
        ["2024-12-31", "2024-03-01", "2024-12-31", "2024-12-31"],
        ["2024-11-30", "2024-02-01", "2024-11-30", "2024-07-01"],
    )
    assert list(s) == [
        EventCode.TOXICITY,
        EventCode.DEATH,
        EventCode.DEATH,
        EventCode.CENSORED,
    ]
    assert list(d) == [31.0, 60.0, 91.0, 182.0]
    d2, _ = competing_risks_outcome(
        start[3:],
        [None],
        [None],
        ["2024-12-31"],
        ["2024-07-01"],
        censor_at=CensorAt.LAST_CONTACT,
    )
    assert d2[0] == 365.0
    d3, s3 = competing_risks_outcome(
        start[:1],
        ["2024-12-01"],
        [None],
        ["2024-12-31"],
        ["2024-12-31"],
        horizon_days=180,
    )
    assert (d3[0], s3[0]) == (180.0, 0)


def test_kaplan_meier_hand_computed():
    km = kaplan_meier([1, 2, 2, 3, 4], [1, 1, 0, 1, 0])
    # S(1) = 4/5, S(2) = 4/5 * 3/4 = 0.6, S(3) = 0.6 * 1/2 = 0.3
    assert km.survival_function_at_times([1, 2, 3]).tolist() == pytest.approx(
        [0.8, 0.6, 0.3]
    )


def test_aalen_johansen_hand_computed_with_competing_death():
    # Times 1..5: tox at 1, death at 2, tox at 3, censored at 4, tox at 5.
    cif = cumulative_incidence([1, 2, 3, 4, 5], [1, 2, 1, 0, 1])
    # CIF jumps: t1 1/5 = 0.2; t3: S(3-) = 0.8*0.75 = 0.6, 0.6 * 1/3 = 0.2 -> 0.4;
    # t5: S(5-) = 0.6 * 2/3 = 0.4, 0.4 * 1/1 -> 0.8.
    values = cif.cumulative_density_
    at = [values.loc[values.index <= t].iloc[-1, 0] for t in (1.5, 3.5, 5.5)]
    assert at == pytest.approx([0.2, 0.4, 0.8], abs=1e-3)


def test_cox_recovers_known_hazard_ratio_and_c_index():
    rng = np.random.default_rng(0)
    n = 3000
    dose = rng.uniform(0, 60, n)
    hazard = 0.001 * np.exp(0.03 * dose)
    t_event = rng.exponential(1 / hazard)
    t_cens = rng.uniform(100, 1500, n)
    frame = pd.DataFrame(
        {
            "days": np.minimum(t_event, t_cens),
            "event": (t_event <= t_cens).astype(int),
            "dose_gy": dose,
        }
    )
    cph = fit_cox(frame, "days", "event", ["dose_gy"])
    lo, hi = cph.confidence_intervals_.loc["dose_gy"]
    assert lo < 0.03 < hi
    assert c_index(frame["days"], frame["event"], dose) > 0.6
    with pytest.raises(DegenerateOutcomeError):
        fit_cox(frame.assign(event=0), "days", "event", ["dose_gy"])


def competing_cohort(seed: int = 13, n: int = 4000) -> pd.DataFrame:
    """Cause-specific hazards with known truth: toxicity log-HR 0.1 per 10 Gy of mean
    dose, death independent of dose; status 0 censored, 1 toxicity, 2 death."""
    rng = np.random.default_rng(seed)
    dose10 = rng.uniform(0, 6, n)
    t_tox = rng.exponential(1 / (0.0008 * np.exp(0.1 * dose10)))
    t_death = rng.exponential(1 / 0.0008, n)
    t_cens = rng.uniform(200, 2000, n)
    times = np.stack([t_cens, t_tox, t_death])
    status = np.argmin(times, axis=0)
    return pd.DataFrame(
        {"days": times.min(axis=0), "status": status, "dose10_gy": dose10}
    )


def test_cox_refuses_the_competing_risk_status():
    frame = competing_cohort()
    assert set(frame["status"]) == {0, 1, 2}
    with pytest.raises(ModelSpecError, match=r"status: codes \[0, 1, 2\] are not a"):
        fit_cox(frame, "days", "status", ["dose10_gy"])


def test_cox_cause_specific_matches_lifelines_on_correct_coding_and_truth():
    from lifelines import CoxPHFitter

    frame = competing_cohort()
    ours = fit_cox(frame, "days", "status", ["dose10_gy"], event_of_interest=1)
    correct = frame.assign(status=(frame["status"] == 1).astype(int))
    theirs = CoxPHFitter().fit(correct, "days", "status")
    assert ours.params_["dose10_gy"] == pytest.approx(
        theirs.params_["dose10_gy"], rel=1e-9
    )
    lo, hi = ours.confidence_intervals_.loc["dose10_gy"]
    assert lo < 0.1 < hi
    # what counting death as toxicity gives: attenuated, and outside the interval
    naive = CoxPHFitter().fit(
        frame.assign(status=(frame["status"] > 0).astype(int)), "days", "status"
    )
    assert not lo < naive.params_["dose10_gy"] < hi
    death = fit_cox(frame, "days", "status", ["dose10_gy"], event_of_interest=2)
    lo, hi = death.confidence_intervals_.loc["dose10_gy"]
    assert lo < 0.0 < hi


@pytest.mark.parametrize(
    ("events", "kwargs", "message"),
    [
        ([0, 1, 2], {}, r"codes \[0, 1, 2\] are not a 0/1 event indicator"),
        ([0, 1, np.nan], {}, "missing or non-integer"),
        ([0, 1, 0.5], {}, "missing or non-integer"),
        ([0, 1, 3], {"event_of_interest": 1}, r"codes \[3\] are not status codes"),
        ([0, 1, 2], {"event_of_interest": 0}, "is not an event code"),
        (["a", "b", "c"], {}, "integer codes"),
    ],
)
def test_event_coding_is_checked(events, kwargs, message):
    with pytest.raises(ModelSpecError, match=message):
        event_indicator(events, **kwargs)


def test_kaplan_meier_and_incidence_accept_only_their_coding():
    frame = competing_cohort(n=300)
    with pytest.raises(ModelSpecError, match="not a 0/1 event indicator"):
        kaplan_meier(frame["days"], frame["status"])
    km = kaplan_meier(frame["days"], frame["status"], event_of_interest=1)
    direct = kaplan_meier(frame["days"], frame["status"] == 1)
    assert km.survival_function_.iloc[:, 0].tolist() == (
        direct.survival_function_.iloc[:, 0].tolist()
    )
    with pytest.raises(ModelSpecError, match=r"codes \[3\] are not status codes"):
        cumulative_incidence([1, 2, 3], [1, 3, 0])
