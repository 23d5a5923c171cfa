"""Checks of a binary outcome vector and of the sample size it supports."""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ntcp.errors import DegenerateOutcomeError, FewEventsWarning

__all__ = ["check_binary_outcome", "sample_size_problems"]

#: Minimum events per estimated parameter (Peduzzi et al. 1996).
MIN_EVENTS_PER_PARAMETER = 10.0


def sample_size_problems(
    n_events: int, n_patients: int, n_parameters: int
) -> list[str]:
    """List sample-size shortfalls of a binary-outcome model (empty list: none).

    Two checks: events per parameter, using the smaller of events and non-events
    (EPV < 10, Peduzzi 1996), and Riley et al.'s criterion that the overall risk be
    estimated within +/- 0.05: ``N >= (1.96/0.05)^2 phi (1 - phi)``.

    References
    ----------
    Riley RD et al. Calculating the sample size required for developing a clinical
    prediction model. BMJ 2020;368:m441.

    Examples
    --------
    >>> sample_size_problems(12, 300, 3)
    ['events per parameter 4.0 < 10 (12 of 300 patients, 3 parameters)']
    """
    problems: list[str] = []
    minority = min(n_events, n_patients - n_events)
    epv = minority / max(n_parameters, 1)
    if epv < MIN_EVENTS_PER_PARAMETER:
        problems.append(
            f"events per parameter {epv:.1f} < 10 ({n_events} of {n_patients} "
            "patients, "
            f"{n_parameters} parameters)"
        )
    phi = n_events / n_patients if n_patients else 0.0
    needed = int(np.ceil((1.96 / 0.05) ** 2 * phi * (1.0 - phi)))
    if n_patients < needed:
        problems.append(
            f"{n_patients} patients < {needed} needed to estimate the overall risk "
            "within +/-0.05 (Riley 2020)"
        )
    return problems


def check_binary_outcome(
    y: ArrayLike, n_patients: int, n_parameters: int
) -> NDArray[np.float64]:
    """Validate a 0/1 outcome vector; warn when events are few.

    Raises
    ------
    DegenerateOutcomeError
        If the length is wrong, values are not 0/1, or there are no events or
        only events.
    """
    arr = np.asarray(y, dtype=float).ravel()
    if arr.size != n_patients:
        raise DegenerateOutcomeError(f"{arr.size} outcomes for {n_patients} patients")
    if not np.all((arr == 0) | (arr == 1)):
        raise DegenerateOutcomeError("outcome must be 0 or 1 for every patient")
    events = int(arr.sum())
    if events == 0:
        raise DegenerateOutcomeError(f"no events among {n_patients} patients")
    if events == n_patients:
        raise DegenerateOutcomeError(f"all {n_patients} patients have the event")
    for problem in sample_size_problems(events, n_patients, n_parameters):
        warnings.warn(problem, FewEventsWarning, stacklevel=3)
    return arr
