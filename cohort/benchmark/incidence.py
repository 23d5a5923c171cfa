r"""Cumulative incidence of an endpoint with death as a competing risk.

The Aalen-Johansen estimator (as :class:`lifelines.AalenJohansenFitter` computes it,
vectorised in :mod:`cohort.benchmark.estimators`) gives
the probability of the endpoint by time :math:`t` when death precludes it:

.. math::

    \hat F_1(t) = \sum_{t_j \le t} \hat S(t_{j-1}) \frac{d_{1j}}{n_j}

with :math:`\hat S` the Kaplan-Meier estimate of being free of any event. Beside it,
for comparison, :math:`1 - \hat S_1(t)`, the Kaplan-Meier estimate with deaths
censored, which overestimates the incidence when deaths are common.

Event codes: 0 censored, 1 the endpoint (e.g. grade >= 2), 2 death (any other
positive code is also a competing event).

Notes
-----
*lifelines* breaks ties between event times by jittering them; this is done here as
lifelines does it, with a jitter of 1e-6 days and seed 0 (the global NumPy random
state is not touched); patients censored at a time still count as at risk for the
events at that time (the usual convention), and the estimate is read just after each
time, so ties change nothing at the resolution of days. Its two interval columns are
labelled the wrong way round (lifelines 0.30); the bounds are taken as their minimum and
maximum, whatever the labels.
An event at time 0 is moved to 1e-3 days (*lifelines* sets the estimate at 0 to 0).
The results equal lifelines' to rounding (tests/cohort/benchmark/test_estimators).

References
----------
Aalen OO, Johansen S. An empirical transition matrix for non-homogeneous Markov
chains based on censored observations. Scand J Stat 1978;5:141-150.
Putter H, Fiocco M, Geskus RB. Tutorial in biostatistics: competing risks and
multi-state models. Stat Med 2007;26:2389-2430.
"""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import ArrayLike, NDArray

from cohort.benchmark.errors import BenchmarkInputError
from cohort.benchmark.estimators import aalen_johansen, kaplan_meier

__all__ = ["AJ_LABEL", "KM_LABEL", "cumulative_incidence"]

FloatArray = NDArray[np.float64]

#: Label of the Aalen-Johansen column for charts.
AJ_LABEL = "Aalen-Johansen (death as a competing risk)"
#: Label of the 1 - Kaplan-Meier column for charts.
KM_LABEL = "1 - Kaplan-Meier (death censored; for comparison, overestimates)"

_JITTER_DAYS = 1e-6
_CENSOR_AFTER = 1e-5
_READ_AFTER = 1e-4
_TIME_ZERO_SHIFT = 1e-3
_COLUMNS = (
    "days",
    "at_risk",
    "aalen_johansen",
    "aj_lower_95",
    "aj_upper_95",
    "one_minus_km",
    "km_lower_95",
    "km_upper_95",
)


def _step(index: FloatArray, values: FloatArray, at: FloatArray) -> FloatArray:
    """Right-continuous step function through (index, values), read at ``at``."""
    pos = np.searchsorted(index, at, side="right") - 1
    out = np.where(pos >= 0, values[np.clip(pos, 0, None)], np.nan)
    return np.asarray(out, dtype=float)


def _validate(
    durations: ArrayLike, events: ArrayLike, horizon_days: float
) -> tuple[FloatArray, NDArray[np.int64]]:
    t = np.atleast_1d(np.asarray(durations, dtype=float))
    e_raw = np.atleast_1d(np.asarray(events, dtype=float))
    if t.ndim != 1 or t.shape != e_raw.shape:
        raise BenchmarkInputError(
            f"durations, events: lengths differ ({t.size}, {e_raw.size})"
        )
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise BenchmarkInputError("durations: days must be finite and non-negative")
    if np.any(~np.isfinite(e_raw)) or np.any(e_raw < 0) or np.any(e_raw % 1 != 0):
        raise BenchmarkInputError(
            "events: codes must be 0 (censored), 1 (endpoint) or 2 (death)"
        )
    if not horizon_days > 0:
        raise BenchmarkInputError("horizon_days: must be positive")
    e = e_raw.astype(np.int64)
    t = np.where((t == 0) & (e != 0), _TIME_ZERO_SHIFT, t)
    return t, e


def _aj(
    t: FloatArray, e: NDArray[np.int64], event_of_interest: int, grid: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    # Censored at a tied time: still at risk for the events at that time.
    shifted = np.where(e == 0, t + _CENSOR_AFTER, t)
    idx, est, b1, b2 = aalen_johansen(
        shifted, e, event_of_interest, jitter=_JITTER_DAYS, seed=0
    )
    at = grid + _READ_AFTER
    lo = np.fmin(b1, b2)
    hi = np.fmax(b1, b2)
    return _step(idx, est, at), _step(idx, lo, at), _step(idx, hi, at)


def _km(
    t: FloatArray, e: NDArray[np.int64], event_of_interest: int, grid: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    idx, s, b1, b2 = kaplan_meier(t, e == event_of_interest)
    at = grid + _READ_AFTER
    s_lo = np.fmin(b1, b2)
    s_hi = np.fmax(b1, b2)
    return (
        1.0 - _step(idx, s, at),
        1.0 - _step(idx, s_hi, at),
        1.0 - _step(idx, s_lo, at),
    )


def cumulative_incidence(
    durations: ArrayLike,
    events: ArrayLike,
    horizon_days: float = 365,
    event_of_interest: int = 1,
) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence with 1 - Kaplan-Meier beside it.

    Parameters
    ----------
    durations : array_like
        Days from the start of radiotherapy to the first event or censoring.
    events : array_like of int
        0 censored, 1 the endpoint, 2 death (competing); other positive codes are
        competing events too.
    horizon_days : float
        Last time of the curve (365: the incidence by 12 months is the last row).
    event_of_interest : int
        Code of the endpoint.

    Returns
    -------
    pandas.DataFrame
        One row per distinct time up to the horizon, with 0 and the horizon: ``days``,
        ``at_risk`` (patients with duration >= days), ``aalen_johansen`` with
        ``aj_lower_95``/``aj_upper_95`` (lifelines' log(-log) intervals),
        ``one_minus_km`` with ``km_lower_95``/``km_upper_95``. ``attrs`` holds
        ``labels`` (chart labels of the two estimators), ``note`` (why a curve is
        empty or zero, else ``None``), ``n_patients``, ``n_events`` and
        ``n_competing``. Intervals are NaN where lifelines gives none (e.g. once
        nobody is at risk).

    Examples
    --------
    >>> t = cumulative_incidence([1, 2, 3, 4, 5, 6], [1, 2, 1, 0, 2, 1], 10)
    >>> last = t.iloc[-1]
    >>> round(float(last["aalen_johansen"]), 4), float(last["one_minus_km"])
    (0.5833, 1.0)
    """
    t, e = _validate(durations, events, horizon_days)
    horizon = float(horizon_days)
    inside = t[t <= horizon]
    grid = np.unique(np.concatenate(([0.0], inside, [horizon])))
    at_risk = t.size - np.searchsorted(np.sort(t), grid, side="left")
    columns: dict[str, ArrayLike] = {"days": grid, "at_risk": at_risk.astype(np.int64)}
    n_events = int(np.sum(e == event_of_interest))
    n_competing = int(np.sum((e != 0) & (e != event_of_interest)))
    note: str | None = None
    if t.size == 0:
        note = "no patients: the cumulative incidence cannot be estimated"
        columns |= dict.fromkeys(_COLUMNS[2:], np.full(grid.size, np.nan))
    elif n_events == 0:
        note = (
            f"no events of type {event_of_interest} among {t.size} patients: "
            "the estimated incidence is 0 (upper limits not estimable)"
        )
        zero, nan = np.zeros(grid.size), np.full(grid.size, np.nan)
        values = [zero, zero, nan, zero, zero, nan]
        columns |= dict(zip(_COLUMNS[2:], values, strict=True))
    else:
        aj, aj_lo, aj_hi = _aj(t, e, event_of_interest, grid)
        km, km_lo, km_hi = _km(t, e, event_of_interest, grid)
        values = [aj, aj_lo, aj_hi, km, km_lo, km_hi]
        columns |= dict(zip(_COLUMNS[2:], values, strict=True))
    frame = pd.DataFrame({c: columns[c] for c in _COLUMNS})
    frame.attrs.update(
        labels={"aalen_johansen": AJ_LABEL, "one_minus_km": KM_LABEL},
        note=note,
        n_patients=int(t.size),
        n_events=n_events,
        n_competing=n_competing,
    )
    return frame
