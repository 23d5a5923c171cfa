"""Day-number arrays of the schedule: vectorised classification and event look-ups.

Dates are day numbers (``date.toordinal()``) in ``int64`` arrays so that a whole
centre (persons x timepoints) is classified at once, as
:func:`cohort.schedule.classify` does for one assessment.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "DONE",
    "DUE",
    "MISSED",
    "OVERDUE",
    "UPCOMING",
    "Days",
    "Events",
    "Mask",
    "any_in_window",
    "classify_days",
    "dates",
    "index",
    "ordinals",
]

_EPOCH = datetime.date(1970, 1, 1).toordinal()
#: Status codes of the vectorised classification (order of ``cohort.schedule.Status``).
UPCOMING, DUE, OVERDUE, MISSED, DONE = range(5)

Days = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


def ordinals(days: Sequence[datetime.date]) -> Days:
    """Day numbers (``date.toordinal()``) of dates or datetimes (their date part)."""
    return np.fromiter((d.toordinal() for d in days), np.int64, len(days))


def dates(days: Days) -> list[datetime.date]:
    """Dates of day numbers (the inverse of :func:`ordinals`)."""
    return (days - _EPOCH).astype("datetime64[D]").tolist()  # type: ignore[no-any-return]


def classify_days(lo: Days, target: Days, hi: Days, local: Days, done: Mask) -> Days:
    """Status codes of assessments on day numbers (arguments broadcast together)."""
    return np.select(
        [done, local < lo, local <= target, local <= hi],
        [DONE, UPCOMING, DUE, OVERDUE],
        default=MISSED,
    ).astype(np.int64)


def index(keys: Days, values: Days) -> tuple[Days, Mask]:
    """Position of each value in the sorted unique ``keys`` and whether it is there."""
    at = np.searchsorted(keys, values)
    found = at < keys.size
    found[found] = keys[at[found]] == values[found]
    return np.minimum(at, max(keys.size - 1, 0)), found


def any_in_window(
    event_row: Days, event_day: Days, rows: Days, lo: Days, hi: Days
) -> Mask:
    """Whether row ``rows[i]`` has an event on a day in ``[lo[i, j], hi[i, j]]``."""
    if event_row.size == 0:
        return np.zeros(lo.shape, dtype=np.bool_)
    base = min(int(event_day.min()), int(lo.min()))
    span = max(int(event_day.max()), int(hi.max())) - base + 1
    keys = np.sort(event_row * span + (event_day - base))
    first = rows[:, None] * span
    left = np.searchsorted(keys, first + (lo - base), side="left")
    right = np.searchsorted(keys, first + (hi - base), side="right")
    return right > left


@dataclass(frozen=True)
class Events:
    """Dated events and PROM timings, by row of the unique person ids."""

    row: Days
    day: Days
    timing_row: Days
    timing: Days

    @classmethod
    def build(
        cls,
        persons: Days,
        rows: Sequence[tuple[object, datetime.date | None, int]],
    ) -> Events:
        """Index ``(person_id, day or None, timing)`` rows by row of ``persons``."""
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty)
        pid = np.fromiter((int(r[0]) for r in rows), np.int64, len(rows))  # type: ignore[call-overload]
        timing = np.fromiter((r[2] for r in rows), np.int64, len(rows))
        row, found = index(persons, pid)
        dated = np.fromiter((r[1] is not None for r in rows), np.bool_, len(rows))
        keep = found & dated
        days = ordinals([r[1] for r in rows if r[1] is not None])
        return cls(row[keep], days[found[dated]], row[found], timing[found])
