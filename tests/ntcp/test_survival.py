from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ntcp.errors import DegenerateOutcomeError
from ntcp.survival import (
    CensorAt,
    EventCode,
    competing_risks_outcome,
    cumulative_incidence,
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
