"""Scoped, audited reads of the cohort overview: recruitment, completion, follow-up.

Every function takes ``(session, scope, **params)`` with an aggregate-read scope
(:func:`cohort.permissions.scope_for` with ``read_aggregates``), aggregates in SQL,
labels the centres through :func:`cohort.benchmark.view.centre_view` (own centres by
code, the others anonymised), suppresses small cells when other centres are shown,
and writes one audit record. Counts are of persons.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, case, distinct, func, select
from sqlalchemy.orm import Session

from cohort import invitations
from cohort.benchmark.view import centre_view, record_read
from cohort.consent_states import ConsentState
from cohort.permissions import Scope
from instruments.counts import toxicity_counts
from omop.cdm import Death
from omop.cohort_tables import ConsentEvent, Enrolment

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = [
    "FUNNEL_STAGES",
    "completion_by_timepoint",
    "followup_status",
    "recruitment_funnel",
    "recruitment_over_time",
]

#: The stages of the recruitment funnel, widest first.
FUNNEL_STAGES = ("eligible", "approached", "consented", "declined", "withdrawn")

_REACHED = {
    "approached": (
        ConsentState.APPROACHED,
        ConsentState.CONSENTED,
        ConsentState.DECLINED,
        ConsentState.WITHDRAWN,
    ),
    "consented": (ConsentState.CONSENTED, ConsentState.WITHDRAWN),
    "declined": (ConsentState.DECLINED,),
    "withdrawn": (ConsentState.WITHDRAWN,),
}


def _frame(rows: list[dict[str, object]], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def recruitment_funnel(
    session: Session, scope: Scope, *, start: datetime.date, end: datetime.date
) -> pd.DataFrame:
    """Return the recruitment funnel per centre from the consent history.

    Persons whose first consent record falls in ``[start, end]``: ``eligible`` every
    one of them; each later stage the persons whose history reached it (a person
    recorded as consented was approached; a withdrawal was a consent first).

    Returns
    -------
    DataFrame
        ``centre, eligible, approached, consented, declined, withdrawn``.
    """
    view = centre_view(session, scope)
    ev = ConsentEvent

    def reached(states: tuple[ConsentState, ...]) -> object:
        wanted = [s.value for s in states]
        return func.count(distinct(case((ev.state.in_(wanted), ev.person_id))))

    query = (
        select(
            Enrolment.care_site_id,
            func.count(distinct(ev.person_id)),
            *[reached(_REACHED[s]) for s in FUNNEL_STAGES[1:]],
        )
        .join(Enrolment, Enrolment.person_id == ev.person_id)
        .where(
            and_(
                Enrolment.first_record_date >= start,
                Enrolment.first_record_date <= end,
                Enrolment.care_site_id.in_(view.centre_ids),
            )
        )
        .group_by(Enrolment.care_site_id)
    )
    rows = [
        {
            "centre": view.labels[int(c)],
            **dict(zip(FUNNEL_STAGES, map(int, n), strict=True)),
        }
        for c, *n in session.execute(query).all()
    ]
    df = _frame(rows, ["centre", *FUNNEL_STAGES]).sort_values("centre")
    record_read(session, scope, "recruitment", f"{start}..{end}: {len(df)} centres")
    return view.suppress(df.reset_index(drop=True), list(FUNNEL_STAGES))


def recruitment_over_time(
    session: Session, scope: Scope, *, start: datetime.date, end: datetime.date
) -> pd.DataFrame:
    """Return persons consented per centre and calendar month (first consent).

    Returns
    -------
    DataFrame
        ``centre, month`` (``YYYY-MM``), ``consented``.
    """
    view = centre_view(session, scope)
    first = (
        select(
            ConsentEvent.care_site_id.label("site"),
            func.min(ConsentEvent.event_date).label("day"),
        )
        .where(
            ConsentEvent.state == ConsentState.CONSENTED.value,
            ConsentEvent.care_site_id.in_(view.centre_ids),
        )
        .group_by(ConsentEvent.person_id, ConsentEvent.care_site_id)
        .subquery()
    )
    per_day = session.execute(
        select(first.c.site, first.c.day, func.count())
        .where(first.c.day >= start, first.c.day <= end)
        .group_by(first.c.site, first.c.day)
    ).all()
    counts: dict[tuple[str, str], int] = {}
    for site, day, n in per_day:
        key = (view.labels[int(site)], f"{day:%Y-%m}")
        counts[key] = counts.get(key, 0) + int(n)
    rows = [{"centre": c, "month": m, "consented": n} for (c, m), n in counts.items()]
    df = _frame(rows, ["centre", "month", "consented"])
    df = df.sort_values(["centre", "month"]).reset_index(drop=True)
    record_read(session, scope, "recruitment_rate", f"{start}..{end}: {len(df)} cells")
    return view.suppress(df, ["consented"], ["centre"])


def completion_by_timepoint(session: Session, scope: Scope) -> pd.DataFrame:
    """Return PROM and toxicity completion per centre and timepoint.

    PROM: expected and completed from :func:`cohort.invitations.completion` (as the
    completion report). Toxicity: persons with a CTCAE grading at the timepoint,
    against the persons currently consented at the centre.

    Returns
    -------
    DataFrame
        ``centre, kind`` (``prom``/``toxicity``), ``timepoint, expected, completed,
        rate``.
    """
    view = centre_view(session, scope)
    rows: list[dict[str, object]] = [
        {"centre": view.labels[r.care_site_id], "kind": "prom",
         "timepoint": r.timepoint, "expected": r.expected, "completed": r.completed}
        for r in invitations.completion(session, view.centre_ids)
    ]  # fmt: skip
    consented = dict(
        session.execute(
            select(Enrolment.care_site_id, func.count())
            .where(Enrolment.state == ConsentState.CONSENTED.value)
            .group_by(Enrolment.care_site_id)
        ).all()
    )
    rows += [
        {"centre": view.labels[site], "kind": "toxicity", "timepoint": tp,
         "expected": max(int(consented.get(site, 0)), n), "completed": n}
        for site, tp, n in toxicity_counts(session)
        if site in view.labels
    ]  # fmt: skip
    df = _frame(rows, ["centre", "kind", "timepoint", "expected", "completed"])
    df = view.suppress(df, ["expected", "completed"])
    df["rate"] = df["completed"] / df["expected"].where(df["expected"] > 0)
    record_read(session, scope, "completion", f"{len(df)} cells")
    return df.reset_index(drop=True)


def followup_status(
    session: Session,
    scope: Scope,
    *,
    today: datetime.date,
    lost_after_days: int = 365,
) -> pd.DataFrame:
    """Return consented persons per centre by vital status: alive, dead, lost.

    ``dead``: a DEATH row; ``lost``: alive with no contact in the last
    ``lost_after_days`` days (or none recorded); ``alive``: the others.

    Returns
    -------
    DataFrame
        ``centre, alive, dead, lost``.
    """
    view = centre_view(session, scope)
    cutoff = today - datetime.timedelta(days=lost_after_days)
    dead = Death.person_id.is_not(None)
    lost = and_(
        Death.person_id.is_(None),
        (Enrolment.last_contact_date.is_(None))
        | (Enrolment.last_contact_date < cutoff),
    )
    query = (
        select(
            Enrolment.care_site_id,
            func.sum(case((dead, 1), else_=0)),
            func.sum(case((lost, 1), else_=0)),
            func.count(),
        )
        .outerjoin(Death, Death.person_id == Enrolment.person_id)
        .where(
            Enrolment.state == ConsentState.CONSENTED.value,
            Enrolment.care_site_id.in_(view.centre_ids),
        )
        .group_by(Enrolment.care_site_id)
    )
    rows = [
        {"centre": view.labels[int(c)], "alive": int(n) - int(d or 0) - int(x or 0),
         "dead": int(d or 0), "lost": int(x or 0)}
        for c, d, x, n in session.execute(query).all()
    ]  # fmt: skip
    df = _frame(rows, ["centre", "alive", "dead", "lost"]).sort_values("centre")
    record_read(session, scope, "followup", f"{len(df)} centres as of {today}")
    return view.suppress(df.reset_index(drop=True), ["alive", "dead", "lost"])
