"""Scoped, audited reads of outcome benchmarking: toxicity incidence, PROM courses.

Toxicity: days from the first RT course's start to the first grade >= 2 of a CTCAE
term (event 1), to death (event 2, competing) or to the last follow-up (censored),
per centre through :func:`cohort.benchmark.incidence.cumulative_incidence`. PROM:
QLQ-C30 scale means by timepoint and the share deteriorating from baseline, per
centre (:mod:`cohort.benchmark.prom`). Other centres with fewer than 5 patients in a
cell are left out. A curve's steps show its events, so another centre's incidence
curve is left out when it has 1 to 4 events by the horizon, its numbers at risk are
withheld and its curve ends where fewer than 5 patients remain at risk.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cohort.benchmark.incidence import cumulative_incidence
from cohort.benchmark.prom_sql import deterioration_by_centre, trajectory_by_centre
from cohort.benchmark.view import MIN_COUNT, CentreView, centre_view, record_read
from cohort.consent_states import ConsentState
from cohort.permissions import Scope
from cohort.vital import death_dates
from etl.store.course import read_first_courses
from instruments.store.toxicity_days import assessment_spans
from omop.cohort_tables import Enrolment

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = ["prom_deterioration", "prom_trajectory", "toxicity_incidence"]

_GRADE = 2


def _persons(view: CentreView, site: str) -> Select[Any]:
    return select(Enrolment.person_id).where(
        Enrolment.state == ConsentState.CONSENTED.value,
        Enrolment.treatment_site == site,
        Enrolment.care_site_id.in_(view.centre_ids),
    )


def _with_centre(view: CentreView, site: str) -> Select[Any]:
    return _persons(view, site).add_columns(Enrolment.care_site_id)


def _shown(view: CentreView, site_id: int, n: int) -> bool:
    return site_id in view.own or not view.shows_others or n >= MIN_COUNT


def toxicity_incidence(
    session: Session,
    scope: Scope,
    *,
    site: str,
    term: str,
    horizon_days: int = 365,
) -> pd.DataFrame:
    """Return the cumulative incidence of grade >= 2 ``term`` per centre.

    Returns
    -------
    DataFrame
        ``centre`` and the columns of
        :func:`~cohort.benchmark.incidence.cumulative_incidence`; ``attrs["notes"]``
        maps centres to the reason a curve is empty (no events) and
        ``attrs["hidden_small"]`` counts the other centres left out because they
        have 1 to 4 events by ``horizon_days``. Other centres' ``at_risk`` is
        withheld (missing) and their estimates end where fewer than 5 are at risk.
    """
    import pandas as pd

    view = centre_view(session, scope)
    persons = _persons(view, site)
    info: dict[int, int] = {}
    contact: dict[int, datetime.date | None] = {}
    for pid, centre, contacted in session.execute(
        select(
            Enrolment.person_id, Enrolment.care_site_id, Enrolment.last_contact_date
        ).where(Enrolment.person_id.in_(persons))
    ).all():
        info[pid], contact[pid] = centre, contacted
    starts = {c.person_id: c.start for c in read_first_courses(session, persons)}
    deaths = dict(death_dates(session, persons))
    spans = assessment_spans(session, persons, term, _GRADE)
    rows = []
    for pid, start in starts.items():
        day: datetime.date
        event: int
        last, first = spans.get(pid, (None, None))
        ends = [(d, e) for d, e in ((first, 1), (deaths.get(pid), 2)) if d]
        if ends:
            day, event = min(ends, key=lambda x: (x[0], x[1]))
        else:
            follow = [d for d in (contact.get(pid), last) if d is not None]
            day, event = (max(follow) if follow else start), 0
        rows.append((int(info[pid]), max((day - start).days, 0), event))
    frames = []
    notes: dict[str, str] = {}
    hidden_small = 0
    by_centre = pd.DataFrame(rows, columns=["site", "days", "event"])
    for site_id, group in by_centre.groupby("site"):
        if not _shown(view, int(site_id), len(group)):
            continue
        other = view.shows_others and int(site_id) not in view.own
        events = int(((group["event"] == 1) & (group["days"] <= horizon_days)).sum())
        if other and 0 < events < MIN_COUNT:
            hidden_small += 1
            continue
        curve = cumulative_incidence(group["days"], group["event"], horizon_days)
        if other:
            curve = _coarsened(curve)
        label = view.labels[int(site_id)]
        if curve.attrs.get("note"):
            notes[label] = str(curve.attrs["note"])
        frames.append(curve.assign(centre=label))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["notes"] = notes
    out.attrs["hidden_small"] = hidden_small
    record_read(session, scope, "toxicity_incidence", f"site {site}, {term}")
    return out


def _coarsened(curve: pd.DataFrame) -> pd.DataFrame:
    """Another centre's curve: no numbers at risk; no estimate below 5 at risk."""
    import pandas as pd

    out = curve.copy()
    few = out["at_risk"] < MIN_COUNT
    estimates = [c for c in out.columns if c not in ("days", "at_risk")]
    out[estimates] = out[estimates].mask(few)
    out["at_risk"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out.attrs = dict(curve.attrs)
    return out


def _keep(view: CentreView, df: pd.DataFrame, n: str) -> pd.DataFrame:
    own = {view.labels[i] for i in view.own if i in view.labels}
    if not view.shows_others:
        return df
    return df[df["centre"].isin(own) | (df[n] >= MIN_COUNT)].reset_index(drop=True)


def prom_trajectory(session: Session, scope: Scope, *, site: str) -> pd.DataFrame:
    """Return mean QLQ-C30 scales per centre and timepoint with 95% intervals.

    Aggregated in SQL (:func:`cohort.benchmark.prom_sql.trajectory_by_centre`).
    """
    view = centre_view(session, scope)
    out = trajectory_by_centre(session, _with_centre(view, site), view.labels)
    record_read(session, scope, "prom_trajectory", f"site {site}: {len(out)} cells")
    return _keep(view, out, "n") if len(out) else out


def prom_deterioration(session: Session, scope: Scope, *, site: str) -> pd.DataFrame:
    """Return the share deteriorating >= 10 points from baseline per centre.

    Aggregated in SQL (:func:`cohort.benchmark.prom_sql.deterioration_by_centre`).
    """
    view = centre_view(session, scope)
    out = deterioration_by_centre(session, _with_centre(view, site), view.labels)
    record_read(session, scope, "prom_deterioration", f"site {site}: {len(out)}")
    return _keep(view, out, "n") if len(out) else out
