"""The planned end of an RT course from its start and number of fractions (pure).

A treatment plan says how many fractions are planned, not on which days they are
given. The loader records the *planned* last fraction: fractions on consecutive
treatment days from the course start, five a week Monday to Friday by default.
Public holidays, interruptions and the gap between planning CT and first fraction are
not known from the plan and are ignored, so the date is a plan, not a record: a later
treatment record may replace it.
"""

from __future__ import annotations

import datetime

import numpy as np

__all__ = ["WEEKMASKS", "planned_end_date"]

#: Treatment days of a week (Monday first) for 1 to 5 fractions a week.
WEEKMASKS: dict[int, str] = {
    1: "1000000",  # Monday
    2: "1001000",  # Monday, Thursday
    3: "1010100",  # Monday, Wednesday, Friday
    4: "1101100",  # Monday, Tuesday, Thursday, Friday
    5: "1111100",  # Monday to Friday
}


def planned_end_date(
    start: datetime.date, n_fractions: int, fractions_per_week: int = 5
) -> datetime.date:
    """Return the planned day of the last fraction of a course.

    The first fraction is on ``start`` when it is a treatment day, else on the next
    one; each further fraction on the next treatment day (:data:`WEEKMASKS`: Monday
    to Friday for 5 a week). Holidays and interruptions are not modelled.

    Parameters
    ----------
    start
        The course start (first possible treatment day).
    n_fractions
        The planned number of fractions (at least 1).
    fractions_per_week
        1 to 5.

    Returns
    -------
    datetime.date
        The day of fraction ``n_fractions``.

    Raises
    ------
    ValueError
        If ``n_fractions`` < 1 or ``fractions_per_week`` is not 1 to 5.

    Examples
    --------
    30 fractions from Monday 1 January 2024 end on Friday of the sixth week:

    >>> planned_end_date(datetime.date(2024, 1, 1), 30)
    datetime.date(2024, 2, 9)
    >>> planned_end_date(datetime.date(2024, 1, 6), 1)  # a Saturday start
    datetime.date(2024, 1, 8)
    """
    if n_fractions < 1:
        raise ValueError(f"n_fractions must be >= 1, got {n_fractions}")
    mask = WEEKMASKS.get(fractions_per_week)
    if mask is None:
        raise ValueError(f"fractions_per_week must be 1 to 5, got {fractions_per_week}")
    end = np.busday_offset(
        np.datetime64(start, "D"), n_fractions - 1, roll="forward", weekmask=mask
    )
    return datetime.date.fromisoformat(str(end))
