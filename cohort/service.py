"""The Python API of cohort management: (session, acting user, ...) -> result.

Every function checks the permission layer (:mod:`cohort.permissions`) and writes an
audit record for each read, write or export of patient-level data. The CLI and the
dashboards call these; none of them commits (the caller owns the transaction), except
:func:`withdraw`'s file deletion, which the caller runs after commit. Reports live in
:mod:`cohort.reports` and projects in :mod:`cohort.projects_service`; both are
re-exported here.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import (
    audit,
    consent,
    consent_gate,
    erasure,
    erasure_files,
    erasure_outside,
    invitations,
    outbox,
    schedule,
    vital,
)
from cohort.centres import get_centre
from cohort.consent import ConsentScope, ConsentState, Sex, TreatmentSite
from cohort.contacts import ContactDetails, read_contacts, store_contact
from cohort.patient_export import PatientRow, export_patients, patients_in_scope
from cohort.permissions import Action, Scope, scope_for
from cohort.projects_service import (
    Attachment,
    add_project_member,
    attach_to_project,
    create_project,
)
from cohort.reports import (
    LabelledCompletion,
    LabelledRecruitment,
    completion_report,
    recruitment_report,
    schedule_due,
)
from cohort.service_lookup import person_by_pseudonym as _person
from cohort.users import resolve_user
from etl.deid.keys import CentreKey
from omop.cdm import CareSite, Person
from omop.cohort_tables import AppUser, AuditRecord, ConsentEvent, Enrolment, Invitation

__all__ = [
    "Attachment",
    "LabelledCompletion",
    "LabelledRecruitment",
    "PatientRow",
    "acting_user",
    "add_project_member",
    "attach_to_project",
    "audit_show",
    "completion_report",
    "create_project",
    "export_patients",
    "invite",
    "list_patients",
    "patient_names",
    "record_consent",
    "record_followup",
    "recruitment_report",
    "schedule_due",
    "withdraw",
]


def acting_user(session: Session, username: str) -> AppUser:
    """Return the account commands act as (``RTCOHORT_USER``, signed in already).

    Raises
    ------
    AuthenticationError
        For an unknown or malformed name (audited).
    """
    return resolve_user(session, username)


def _require_centre(scope: Scope, centre: CareSite) -> None:
    scope.require_centre(centre)


def record_consent(
    session: Session,
    actor: AppUser,
    *,
    centre_code: str,
    pseudonym: str,
    state: ConsentState | str,
    event_date: datetime.date,
    version: str | None = None,
    scopes: Sequence[ConsentScope | str] | None = None,
    year_of_birth: int | None = None,
    sex: Sex | str | None = None,
    site: TreatmentSite | str | None = None,
    key: CentreKey | None = None,
    contact: ContactDetails | None = None,
    data_dir: Path | None = None,
    stage: str | None = None,
) -> ConsentEvent:
    """Record a consent state (and the contact register entry, given the key).

    A decline or withdrawal purges what was held for the person
    (:func:`cohort.consent_gate.purge_on_refusal`; with ``data_dir`` the files are
    journalled for :func:`cohort.erasure_files.finish_erasure` after commit).
    ``stage`` (overall stage group, with a consent to data use) is stored by
    :func:`cohort.stage.record_stage`.
    """
    centre = get_centre(session, centre_code)
    _require_centre(scope_for(session, actor, Action.WRITE), centre)
    consent.check_centre_pseudonym(centre, pseudonym)
    event = consent.record_consent(
        session,
        centre=centre,
        pseudonym=pseudonym,
        state=state,
        event_date=event_date,
        actor=actor.username,
        version=version,
        scopes=scopes,
        year_of_birth=year_of_birth,
        sex=sex,
        site=site,
        stage=stage,
    )
    if key is not None and contact is not None:
        person = session.get(Person, event.person_id)
        assert person is not None
        store_contact(session, key, person, contact)
    audit.record(
        session,
        actor.username,
        "consent.record",
        f"state={event.state} version={event.consent_version or '-'}",
        [event.person_id],
    )
    if ConsentState(event.state) in consent_gate.REFUSED_STATES:
        consent_gate.purge_on_refusal(
            session, actor.username, event.person_id, pseudonym, data_dir
        )
    return event


def record_followup(
    session: Session,
    actor: AppUser,
    *,
    centre_code: str,
    pseudonym: str,
    last_contact: datetime.date | None = None,
    death: datetime.date | None = None,
) -> None:
    """Record a last contact or a death."""
    centre = get_centre(session, centre_code)
    _require_centre(scope_for(session, actor, Action.WRITE), centre)
    person = _person(session, pseudonym, centre)
    if death is not None:
        vital.record_death(session, person.person_id, death)
    if last_contact is not None:
        vital.record_last_contact(session, person.person_id, last_contact)
    what = "death" if death is not None else "last-contact"
    audit.record(session, actor.username, "followup.record", what, [person.person_id])


def list_patients(
    session: Session, actor: AppUser, *, today: datetime.date | None = None
) -> list[PatientRow]:
    """Return the patients the user may see (audited as a read)."""
    scope = scope_for(session, actor, Action.READ_PATIENTS, today=today).require()
    rows = patients_in_scope(session, scope)
    audit.record(
        session,
        actor.username,
        "patients.read",
        f"{len(rows)} patients",
        [r.person_id for r in rows],
    )
    return rows


def patient_names(
    session: Session, actor: AppUser, *, centre_code: str, key: CentreKey
) -> dict[str, str]:
    """Return ``{pseudonym: name}`` of a centre's patients (clinicians' own only)."""
    centre = get_centre(session, centre_code)
    _require_centre(scope_for(session, actor, Action.READ_CONTACTS), centre)
    details = read_contacts(session, key, centre.care_site_id)
    pseudonyms = dict(
        session.execute(
            select(Person.person_id, Person.person_source_value).where(
                Person.person_id.in_(list(details))
            )
        ).all()
    )
    audit.record(
        session, actor.username, "contacts.read", "names", list(details.keys())
    )
    return {str(pseudonyms[p]): d.name or "" for p, d in details.items()}


def invite(
    session: Session,
    actor: AppUser,
    *,
    centre_code: str,
    timepoint: str,
    today: datetime.date,
    signing_key: bytes,
    key: CentreKey | None = None,
    valid_for: datetime.timedelta = datetime.timedelta(days=28),
) -> list[invitations.IssuedInvitation]:
    """Invite every patient whose PROM at ``timepoint`` is due or overdue.

    Patients with an open (unused, unexpired) invitation for the timepoint are
    skipped. Each invitation puts a message in the outbox (sent by
    :func:`cohort.outbox.deliver`).
    """
    items = schedule_due(
        session,
        actor,
        centre_code=centre_code,
        today=today,
        kinds=(schedule.Kind.PROM,),
        key=key,
    )
    now = datetime.datetime.now(datetime.UTC)
    targets = sorted(
        invitations.without_deaths(
            session,
            {
                i.person_id
                for i in items
                if i.timepoint == timepoint
                and i.status in (schedule.Status.DUE, schedule.Status.OVERDUE)
            },
        )
    )
    open_ = set(
        session.scalars(
            select(Invitation.person_id).where(
                Invitation.person_id.in_(targets),
                Invitation.timepoint_code == timepoint,
                Invitation.used_at.is_(None),
                Invitation.expires_at > now,
            )
        )
    )
    issued = []
    for pid in targets:
        if pid in open_:
            continue
        inv = invitations.issue(
            session, signing_key, pid, timepoint, valid_for=valid_for, now=now
        )
        outbox.enqueue(
            session,
            pid,
            "invitation",
            "Your radiotherapy follow-up questionnaire",
            f"Please fill in your follow-up questionnaire: {outbox.LINK_PLACEHOLDER}\n",
            invitation_id=inv.invitation_id,
            now=now,
        )
        issued.append(inv)
    audit.record(
        session,
        actor.username,
        "invitations.create",
        f"timepoint={timepoint} n={len(issued)}",
        _invited_persons(session, issued),
    )
    return issued


def _invited_persons(
    session: Session, issued: list[invitations.IssuedInvitation]
) -> list[int]:
    ids = [i.invitation_id for i in issued]
    if not ids:
        return []
    return list(
        session.scalars(
            select(Invitation.person_id).where(Invitation.invitation_id.in_(ids))
        )
    )


@dataclass(frozen=True)
class WithdrawalResult:
    """What a withdrawal did (no identifier)."""

    erased: bool
    report: erasure.ErasureReport | None


def withdraw(
    session: Session,
    actor: AppUser,
    *,
    centre_code: str,
    pseudonym: str,
    event_date: datetime.date,
    erase: bool,
    data_dir: Path | None = None,
    key: CentreKey | None = None,
) -> WithdrawalResult:
    """Record the withdrawal; with ``erase``, remove the person everywhere.

    Withdrawal and erasure are one transaction (the caller's). The audit record of
    an erasure holds counts only. With ``data_dir``, leftovers of earlier erasures
    are deleted first, the person's files outside the database are found
    (receiver rejects, audit copies: :func:`cohort.erasure_outside.find_outside`,
    which needs the centre ``key`` for audit copies and for rejects that name no
    pseudonym; what cannot be linked is listed in ``report.unlinkable``), and the
    hashes of this erasure's files are journalled; after commit the caller deletes
    them with :func:`cohort.erasure_files.finish_erasure`
    (``result.report.orphan_files`` and ``result.report.outside_files``).
    """
    centre = get_centre(session, centre_code)
    action = Action.ERASE if erase else Action.WRITE
    _require_centre(scope_for(session, actor, action), centre)
    if erase and data_dir is not None:
        erasure_files.finish_erasure(session, data_dir)
    person = _person(session, pseudonym, centre)
    enrolment = session.get(Enrolment, person.person_id)
    if not (erase and enrolment is not None and enrolment.state == "declined"):
        consent.record_consent(  # a declined person is erased without withdrawing
            session,
            centre=centre,
            pseudonym=pseudonym,
            state=ConsentState.WITHDRAWN,
            event_date=event_date,
            actor=actor.username,
        )
    if not erase:
        consent_gate.purge_on_refusal(
            session, actor.username, person.person_id, pseudonym, data_dir
        )
        audit.record(
            session,
            actor.username,
            "consent.withdraw",
            "no erasure",
            [person.person_id],
        )
        return WithdrawalResult(False, None)
    report = erasure.erase_person(session, person.person_id)
    if data_dir is not None:
        found = erasure_outside.find_outside(Path(data_dir), pseudonym, key)
        report.outside_files = sorted(found.hashes)
        report.unlinkable = found.unlinkable
        erasure_files.write_journal(
            data_dir,
            report.orphan_files,
            outside=report.outside_files,
            person_id=person.person_id,
        )
    kept = f", {len(report.unlinkable)} unlinkable kept" if report.unlinkable else ""
    audit.record(
        session,
        actor.username,
        "person.erase",
        f"withdrawal with erasure: {report.rows} rows in "
        f"{len(report.rows_by_table)} tables, {len(report.orphan_files)} files, "
        f"{len(report.outside_files)} outside files{kept}",
    )
    return WithdrawalResult(True, report)


def audit_show(
    session: Session, actor: AppUser, *, pseudonym: str
) -> list[AuditRecord]:
    """Return the audit records that concern a person (admins only)."""
    scope_for(session, actor, Action.READ_AUDIT).require()
    person = _person(session, pseudonym)
    return audit.records_for_person(session, person.person_id)
