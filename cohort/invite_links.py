"""PROM links handed out without e-mail: printed, sent by SMS, given at the clinic.

:func:`issue_links` issues the same signed, single-use links as
:func:`cohort.service.invite` but queues no e-mail: it returns the links (shown once,
never stored) for the caller to print as JSON lines. It is audited like a send
(action ``invitations.print``, with the persons concerned). With ``pseudonym`` it
issues one link for that patient even outside the timepoint's window, with a warning.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import audit, consent, invitations, schedule
from cohort.centres import get_centre
from cohort.errors import InvalidInputError, PermissionDeniedError, UnknownPersonError
from cohort.permissions import Action, scope_for
from etl.deid.keys import CentreKey
from omop.cdm import Person
from omop.cohort_tables import AppUser, Enrolment, Invitation

__all__ = ["LinkBatch", "PrintedLink", "issue_links"]


@dataclass(frozen=True)
class PrintedLink:
    """One new link: whom it is for and until when it works."""

    pseudonym: str
    timepoint: str
    url: str
    expires: datetime.datetime

    def as_json(self) -> str:
        """One JSON line ``{"pseudonym", "timepoint", "url", "expires"}``.

        Examples
        --------
        >>> when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        >>> PrintedLink("P1", "m3", "http://h/prom?t=x", when).as_json()
        '{"pseudonym": "P1", "timepoint": "m3", "url": "http://h/prom?t=x", \
"expires": "2026-01-02T03:04:05+00:00"}'
        """
        return json.dumps(
            {
                "pseudonym": self.pseudonym,
                "timepoint": self.timepoint,
                "url": self.url,
                "expires": self.expires.isoformat(),
            }
        )


@dataclass
class LinkBatch:
    """The links issued by one call, and warnings for the operator."""

    links: list[PrintedLink] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _due_persons(  # noqa: PLR0917
    session: Session,
    actor: AppUser,
    centre_code: str,
    timepoint: str,
    today: datetime.date,
    key: CentreKey | None,
) -> set[int]:
    from cohort.service import schedule_due

    items = schedule_due(
        session,
        actor,
        centre_code=centre_code,
        today=today,
        kinds=(schedule.Kind.PROM,),
        key=key,
    )
    wanted = (schedule.Status.DUE, schedule.Status.OVERDUE)
    return {
        i.person_id for i in items if i.timepoint == timepoint and i.status in wanted
    }


def _open_invitations(
    session: Session, person_ids: set[int], timepoint: str, now: datetime.datetime
) -> set[int]:
    return set(
        session.scalars(
            select(Invitation.person_id).where(
                Invitation.person_id.in_(sorted(person_ids)),
                Invitation.timepoint_code == timepoint,
                Invitation.used_at.is_(None),
                Invitation.expires_at > now,
            )
        )
    )


def _one_patient(session: Session, centre_id: int, pseudonym: str) -> int:
    person = consent.find_person(session, pseudonym)
    if person is None or person.care_site_id != centre_id:
        raise UnknownPersonError(f"--pseudonym: unknown person {pseudonym} here")
    state = session.scalar(
        select(Enrolment.state).where(Enrolment.person_id == person.person_id)
    )
    if state != "consented":
        raise InvalidInputError(
            f"--pseudonym: {pseudonym} is {state or 'not enrolled'}, not consented; "
            "no link issued"
        )
    if not invitations.without_deaths(session, {int(person.person_id)}):
        raise InvalidInputError(
            f"--pseudonym: {pseudonym} has a recorded death; no link issued"
        )
    return int(person.person_id)


def issue_links(
    session: Session,
    actor: AppUser,
    *,
    centre_code: str,
    timepoint: str,
    today: datetime.date,
    signing_key: bytes,
    link_base: str,
    key: CentreKey | None = None,
    pseudonym: str | None = None,
    valid_for: datetime.timedelta = datetime.timedelta(days=28),
    now: datetime.datetime | None = None,
) -> LinkBatch:
    """Issue PROM links without queueing e-mail; return them with warnings.

    Parameters
    ----------
    session
        Open session; the caller commits.
    actor
        The acting user; needs ``write`` at the centre.
    centre_code, timepoint, today
        Which patients: those whose PROM at ``timepoint`` is due or overdue on
        ``today`` and who hold no open link for it.
    signing_key
        The platform's invitation signing key.
    link_base
        The URL the token is appended to (``http://host:8501/prom?t=``).
    key
        The centre key (real-time schedule from the contact register's offsets).
    pseudonym
        Issue one link for this consented patient, even outside the window.
    valid_for, now
        Link lifetime and issue time (default now, UTC).

    Raises
    ------
    PermissionDeniedError
        The user may not write at this centre.
    UnknownPersonError, InvalidInputError
        ``pseudonym`` is not a consented patient of the centre, or the timepoint is
        unknown.
    """
    codes = {tp.code for tp in schedule.DEFAULT_TIMEPOINTS}
    if timepoint not in codes:
        raise InvalidInputError(
            f"--timepoint: unknown timepoint {timepoint!r}; use one of "
            + ", ".join(tp.code for tp in schedule.DEFAULT_TIMEPOINTS)
        )
    centre = get_centre(session, centre_code)
    scope = scope_for(session, actor, Action.WRITE).require()
    if not scope.centre_allowed(centre.care_site_id):
        raise PermissionDeniedError(
            f"user {actor.username} may not write at centre "
            f"{centre.care_site_source_value}"
        )
    moment = now or datetime.datetime.now(datetime.UTC)
    due = invitations.without_deaths(
        session, _due_persons(session, actor, centre_code, timepoint, today, key)
    )
    batch = LinkBatch()
    if pseudonym is not None:
        targets = [_one_patient(session, centre.care_site_id, pseudonym)]
        if targets[0] not in due:
            batch.warnings.append(
                f"{pseudonym}: {timepoint} is not due or overdue on {today}; "
                "link issued outside the window"
            )
    else:
        targets = sorted(due - _open_invitations(session, due, timepoint, moment))
    issued = []
    for pid in targets:
        inv = invitations.issue(
            session, signing_key, pid, timepoint, valid_for=valid_for, now=moment
        )
        issued.append((pid, inv))
    names = dict(
        session.execute(
            select(Person.person_id, Person.person_source_value).where(
                Person.person_id.in_([p for p, _ in issued])
            )
        ).all()
    )
    for pid, inv in issued:
        batch.links.append(
            PrintedLink(
                str(names[pid]), timepoint, link_base + inv.token, inv.expires_at
            )
        )
    audit.record(
        session,
        actor.username,
        "invitations.print",
        f"timepoint={timepoint} n={len(issued)}"
        + (" outside-window" if batch.warnings else ""),
        [p for p, _ in issued],
    )
    return batch
