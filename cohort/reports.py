"""Schedule and aggregate reports of the cohort service API.

Each function checks the permission layer (:mod:`cohort.permissions`); patient-level
reads are audited. Re-exported by :mod:`cohort.service`.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cohort import audit, consent, invitations, schedule
from cohort.centres import centre_codes, get_centre
from cohort.contacts import date_offsets
from cohort.permissions import Action, anonymised_labels, scope_for
from etl.deid.keys import CentreKey
from omop.cohort_tables import AppUser

__all__ = [
    "LabelledCompletion",
    "LabelledRecruitment",
    "completion_report",
    "recruitment_report",
    "schedule_due",
]


def schedule_due(
    session: Session,
    actor: AppUser,
    *,
    centre_code: str,
    today: datetime.date,
    kinds: Sequence[schedule.Kind] = (schedule.Kind.TOXICITY, schedule.Kind.PROM),
    key: CentreKey | None = None,
    include_upcoming: bool = False,
) -> list[schedule.ScheduleItem]:
    """Return due, overdue and missed assessments of a centre's patients."""
    centre = get_centre(session, centre_code)
    scope_for(session, actor, Action.READ_PATIENTS).require_centre(centre)
    offsets = date_offsets(session, key, centre.care_site_id) if key else None
    wanted = {schedule.Status.DUE, schedule.Status.OVERDUE, schedule.Status.MISSED}
    if include_upcoming:
        wanted.add(schedule.Status.UPCOMING)
    items = schedule.schedule(
        session,
        centre.care_site_id,
        today,
        kinds=kinds,
        offsets=offsets,
        statuses=wanted,
    )
    audit.record(
        session,
        actor.username,
        "schedule.read",
        f"{len(items)} assessments",
        {i.person_id for i in items},
    )
    return items


@dataclass(frozen=True)
class LabelledRecruitment:
    """Recruitment of one centre, labelled as the user may see it."""

    centre: str
    eligible: int
    consented: int
    declined: int
    rate: float | None


def recruitment_report(
    session: Session, actor: AppUser, *, start: datetime.date, end: datetime.date
) -> list[LabelledRecruitment]:
    """Recruitment rate per centre; other centres anonymised for non-admins."""
    scope = scope_for(session, actor, Action.READ_AGGREGATES).require()
    rows = consent.recruitment(session, start, end)
    labels = anonymised_labels(
        [r.care_site_id for r in rows], centre_codes(session), scope.named_centre_ids
    )
    out = [
        LabelledRecruitment(
            labels[r.care_site_id], r.eligible, r.consented, r.declined, r.rate
        )
        for r in rows
    ]
    return sorted(out, key=lambda r: r.centre)


@dataclass(frozen=True)
class LabelledCompletion:
    """PROM completion of one centre and timepoint, labelled."""

    centre: str
    timepoint: str
    expected: int
    completed: int
    rate: float | None


def completion_report(session: Session, actor: AppUser) -> list[LabelledCompletion]:
    """PROM completion per centre and timepoint; other centres anonymised."""
    scope = scope_for(session, actor, Action.READ_AGGREGATES).require()
    rows = invitations.completion(session)
    labels = anonymised_labels(
        [r.care_site_id for r in rows], centre_codes(session), scope.named_centre_ids
    )
    return [
        LabelledCompletion(
            labels[r.care_site_id], r.timepoint, r.expected, r.completed, r.rate
        )
        for r in rows
    ]
