"""Time to toxicity: censoring, Kaplan-Meier, Aalen-Johansen and Cox (lifelines).

Outcome coding for competing risks: 0 censored, 1 the toxicity, 2 death without the
toxicity (a competing event). Time is counted in days from the start of radiotherapy;
patients without an event are censored at their last assessment (default; toxicity can
only be seen when assessed) or at their last contact.

Event coding is checked, never guessed: :func:`kaplan_meier` and :func:`fit_cox` take a
0/1 event indicator (0 censored, 1 event); given the 0/1/2 status above they refuse it,
unless ``event_of_interest`` names the event, which makes the analysis cause-specific
(the other events are censored at their time: a cause-specific hazard for Cox;
``1 - KM`` of a cause is not its cumulative incidence). :func:`cumulative_incidence`
takes the 0/1/2 status.

Cox models use :class:`lifelines.CoxPHFitter` directly (``fit_cox`` only validates and
calls it). The cumulative incidence with death as a competing risk uses
:class:`lifelines.AalenJohansenFitter`; ``1 - Kaplan-Meier`` would overestimate it.

References
----------
Aalen OO, Johansen S. An empirical transition matrix for non-homogeneous Markov chains
based on censored observations. Scand J Stat 1978;5:141-150.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import ArrayLike, NDArray

from ntcp.errors import DegenerateOutcomeError, ModelSpecError

__all__ = [
    "CensorAt",
    "EventCode",
    "competing_risks_outcome",
    "cumulative_incidence",
    "event_indicator",
    "fit_cox",
    "kaplan_meier",
]


class EventCode(IntEnum):
    """Status codes of a competing-risks outcome."""

    CENSORED = 0
    TOXICITY = 1
    DEATH = 2


class CensorAt(StrEnum):
    """Where follow-up without an event ends."""

    LAST_ASSESSMENT = "last_assessment"
    LAST_CONTACT = "last_contact"


def _days(values: ArrayLike, start: pd.Series) -> NDArray[np.float64]:
    dates = pd.to_datetime(pd.Series(values), utc=True)
    return np.asarray((dates - start).dt.total_seconds() / 86400.0, dtype=float)


def competing_risks_outcome(  # noqa: PLR0917
    rt_start: ArrayLike,
    event_date: ArrayLike,
    death_date: ArrayLike,
    last_contact: ArrayLike,
    last_assessment: ArrayLike,
    censor_at: CensorAt | str = CensorAt.LAST_ASSESSMENT,
    horizon_days: float | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Durations (days since RT start) and status codes per patient.

    Missing dates are ``None``/``NaT``. The earlier of a recorded toxicity and death
    ends follow-up (a death after the last assessment still counts as the competing
    event); without either, the patient is censored at ``censor_at`` (the last contact
    if there is no assessment).
    With ``horizon_days``, everything after the horizon is censored at it.

    Raises
    ------
    ModelSpecError
        If a patient has no follow-up date at all, or a date before RT start.

    Examples
    --------
    >>> d, s = competing_risks_outcome(["2024-01-01"], ["2024-03-01"], [None],
    ...                                ["2024-12-01"], ["2024-11-01"])
    >>> float(d[0]), int(s[0])
    (60.0, 1)
    """
    start = pd.to_datetime(pd.Series(rt_start), utc=True)
    tox = _days(event_date, start)
    death = _days(death_date, start)
    contact = _days(last_contact, start)
    assessed = _days(last_assessment, start)
    mode = CensorAt(censor_at)
    censor = assessed if mode is CensorAt.LAST_ASSESSMENT else contact
    censor = np.where(np.isnan(censor), contact, censor)
    if np.any(np.isnan(censor) & np.isnan(tox) & np.isnan(death)):
        first = int(
            np.flatnonzero(np.isnan(censor) & np.isnan(tox) & np.isnan(death))[0]
        )
        raise ModelSpecError(f"patient {first}: no event, death or follow-up date")
    for name, arr in (("toxicity", tox), ("death", death), ("follow-up", censor)):
        if np.any(arr[~np.isnan(arr)] < 0):
            raise ModelSpecError(f"a {name} date lies before the start of radiotherapy")
    t_tox = np.where(np.isnan(tox), np.inf, tox)
    t_death = np.where(np.isnan(death), np.inf, death)
    t_cens = np.where(np.isnan(censor), np.inf, censor)
    # A recorded toxicity or death ends follow-up whatever the last assessment; only
    # patients with neither are censored (at the last assessment or contact).
    has_tox = np.isfinite(t_tox) & (t_tox <= t_death)
    has_death = ~has_tox & np.isfinite(t_death)
    duration = np.where(has_tox, t_tox, np.where(has_death, t_death, t_cens))
    status = np.where(
        has_tox,
        EventCode.TOXICITY,
        np.where(has_death, EventCode.DEATH, EventCode.CENSORED),
    ).astype(np.int64)
    if horizon_days is not None:
        late = duration > horizon_days
        duration = np.where(late, horizon_days, duration)
        status = np.where(late, EventCode.CENSORED, status).astype(np.int64)
    return duration, status


def event_indicator(
    events: ArrayLike, *, event_of_interest: int | None = None, name: str = "events"
) -> NDArray[np.int64]:
    """Return a 0/1 event indicator, refusing any other coding.

    Parameters
    ----------
    events
        0/1 (or boolean) indicators; or, with ``event_of_interest``, the competing-risk
        status (:class:`EventCode`: 0 censored, 1 toxicity, 2 death).
    event_of_interest
        The status code counted as the event; every other code is censored
        (cause-specific analysis).
    name
        Name of the column or argument, for messages.

    Raises
    ------
    ModelSpecError
        Missing or non-integer values; any code other than 0/1 without
        ``event_of_interest`` (the platform's 0/1/2 status would count death as the
        event); a status code outside :class:`EventCode` or an unknown
        ``event_of_interest``.

    Examples
    --------
    >>> event_indicator([0, 1, 2, 1], event_of_interest=EventCode.TOXICITY).tolist()
    [0, 1, 0, 1]
    """
    values = np.asarray(events)
    if values.dtype == bool:
        values = values.astype(np.int64)
    try:
        numbers = values.astype(np.float64)
    except (TypeError, ValueError):
        raise ModelSpecError(f"{name}: values must be integer codes") from None
    if np.isnan(numbers).any() or not np.all(numbers == np.round(numbers)):
        raise ModelSpecError(f"{name}: missing or non-integer event codes")
    codes = set(np.unique(numbers).astype(np.int64).tolist())
    if event_of_interest is None:
        if not codes <= {0, 1}:
            raise ModelSpecError(
                f"{name}: codes {sorted(codes)} are not a 0/1 event indicator (0"
                " censored, 1 event); for the competing-risk status (0 censored,"
                " 1 toxicity, 2 death) pass event_of_interest=1 (cause-specific: other"
                " events censored) or use cumulative_incidence"
            )
        indicator: NDArray[np.int64] = numbers.astype(np.int64)
        return indicator
    known = {int(c) for c in EventCode}
    if int(event_of_interest) not in known - {EventCode.CENSORED}:
        raise ModelSpecError(
            f"event_of_interest={event_of_interest!r} is not an event code (1 toxicity,"
            " 2 death)"
        )
    if not codes <= known:
        raise ModelSpecError(
            f"{name}: codes {sorted(codes - known)} are not status codes (0 censored,"
            " 1 toxicity, 2 death)"
        )
    chosen: NDArray[np.int64] = (numbers == int(event_of_interest)).astype(np.int64)
    return chosen


def kaplan_meier(
    durations: ArrayLike,
    events: ArrayLike,
    label: str = "KM",
    *,
    event_of_interest: int | None = None,
) -> Any:
    """Kaplan-Meier estimate (lifelines ``KaplanMeierFitter``, fitted).

    ``events`` is a 0/1 indicator; the 0/1/2 status is refused unless
    ``event_of_interest`` is given (then the other events are censored: ``1 - KM`` of a
    cause overestimates its cumulative incidence, see :func:`cumulative_incidence`).

    Raises
    ------
    ModelSpecError
        See :func:`event_indicator`.
    """
    from lifelines import KaplanMeierFitter

    observed = event_indicator(events, event_of_interest=event_of_interest)
    return KaplanMeierFitter(label=label).fit(durations, event_observed=observed)


def cumulative_incidence(
    durations: ArrayLike, status: ArrayLike, event_of_interest: int = EventCode.TOXICITY
) -> Any:
    """Aalen-Johansen cumulative incidence with competing events (fitted lifelines).

    ``status`` is the competing-risk coding (:class:`EventCode`: 0 censored, 1
    toxicity, 2 death).

    Raises
    ------
    ModelSpecError
        A code outside :class:`EventCode`, or ``event_of_interest`` not an event code.
    """
    from lifelines import AalenJohansenFitter

    event_indicator(status, event_of_interest=event_of_interest, name="status")
    codes = np.asarray(status, dtype=np.float64).astype(np.int64)
    ajf = AalenJohansenFitter(calculate_variance=True, jitter_level=1e-4, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines warns when it jitters tied times
        return ajf.fit(durations, codes, event_of_interest=int(event_of_interest))


def fit_cox(
    frame: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: Sequence[str],
    penalizer: float = 0.0,
    *,
    event_of_interest: int | None = None,
) -> Any:
    """Fit :class:`lifelines.CoxPHFitter` on the named columns (unpenalised by default).

    Parameters
    ----------
    frame
        One row per patient.
    duration_col, event_col, covariates
        Column names; ``event_col`` is a 0/1 indicator (0 censored, 1 event).
    penalizer
        lifelines' penalizer.
    event_of_interest
        With the competing-risk status in ``event_col`` (0 censored, 1 toxicity,
        2 death): the code of the event; the other events are censored at their
        time, which fits the cause-specific hazard.

    Raises
    ------
    ModelSpecError
        A missing column; an event column that is not 0/1 (such as the 0/1/2 status,
        which would count death as toxicity) without ``event_of_interest``.
    DegenerateOutcomeError
        If there is no event.
    """
    from lifelines import CoxPHFitter

    cols = [duration_col, event_col, *covariates]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ModelSpecError(f"missing column(s) {', '.join(missing)}")
    data = frame[cols].copy()
    data[event_col] = event_indicator(
        data[event_col], event_of_interest=event_of_interest, name=event_col
    )
    if int(data[event_col].sum()) == 0:
        raise DegenerateOutcomeError("no events: a Cox model cannot be fitted")
    return CoxPHFitter(penalizer=penalizer).fit(data, duration_col, event_col)
