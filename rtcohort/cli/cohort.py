"""`rtcohort` commands owned by the `cohort` area.

Commands that touch patient data act as ``RTCOHORT_USER`` (default ``admin``) and are
audited as that user. Errors print one line and exit 2; nothing changes.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rtcohort.cli.common import fail, open_engine

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from etl.deid.keys import CentreKey
    from omop.cohort_tables import AppUser

__all__ = ["register"]

centre_app = typer.Typer(help="Centres (CARE_SITE).", no_args_is_help=True)
users_app = typer.Typer(help="Platform accounts and roles.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent and enrolment.", no_args_is_help=True)
followup_app = typer.Typer(
    help="Vital status: last contact, death.", no_args_is_help=True
)
schedule_app = typer.Typer(help="Follow-up schedule.", no_args_is_help=True)
project_app = typer.Typer(help="Collaboration projects.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)

KeyFileOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help="Centre key file (pseudonymises PATIENT)."),
]
PseudonymOpt = Annotated[
    str | None, typer.Option("--pseudonym", help="Pseudonym instead of PATIENT + key.")
]
CentreOpt = Annotated[str, typer.Option("--centre", help="Centre code.")]
PatientArg = Annotated[
    str | None, typer.Argument(help="Hospital patient identifier (with --key-file).")
]


def _date(value: str | None, option: str) -> datetime.date | None:
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: not a date YYYY-MM-DD")


def _today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def _data_dir() -> Path:
    from rtcohort.settings import get_settings

    return get_settings().data_dir


@contextmanager
def _session() -> Iterator[Session]:
    """One transaction; any RTCohortError becomes one line and exit 2 (rolled back)."""
    from omop.engine import session_factory
    from omop.errors import RTCohortError

    engine = open_engine()
    try:
        with session_factory(engine).begin() as session:
            yield session
    except RTCohortError as exc:
        fail(str(exc))
    finally:
        engine.dispose()


def _actor(session: Session) -> AppUser:
    from cohort.service import acting_user
    from rtcohort.settings import get_settings

    return acting_user(session, get_settings().user)


class _Patient:
    """A patient named on the command line: identity and key if given.

    The identity comes from :mod:`etl.deid.identity`.
    """

    def __init__(
        self,
        patient: str | None,
        pseudonym: str | None,
        centre: str,
        key_file: Path | None,
    ) -> None:
        from etl.deid.identity import identify, known_pseudonym
        from etl.deid.keys import load_key

        self.key: CentreKey | None = None
        if pseudonym is not None:
            if patient is not None:
                fail("give PATIENT (with --key-file) or --pseudonym, not both")
            self.identity = known_pseudonym(pseudonym)
            if key_file is not None:
                self.key = load_key(key_file, centre.strip().upper())
            return
        if patient is None or key_file is None:
            fail("give PATIENT with --key-file, or --pseudonym")
        self.key = load_key(key_file, centre.strip().upper())
        self.identity = identify(self.key, patient)

    @property
    def pseudonym(self) -> str:
        """The patient's pseudonym."""
        return self.identity.pseudonym

    def shift(self, day: datetime.date) -> datetime.date:
        """Move a real date into the patient's pseudonymised time frame."""
        return self.identity.shift(day)


# ---------------------------------------------------------------- centres, users
@centre_app.command("add")
def centre_add(
    code: Annotated[str, typer.Argument(help="Centre code, e.g. AMS01.")],
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
) -> None:
    """Add a centre. Example: rtcohort centre add AMS01 --name "Amsterdam UMC"."""
    from cohort.centres import add_centre
    from cohort.permissions import Action, scope_for

    with _session() as session:
        scope_for(session, _actor(session), Action.MANAGE).require()
        site = add_centre(session, code, name)
        typer.echo(f"centre {site.care_site_source_value} added")


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[
        str,
        typer.Option(
            "--role", help="admin|data_manager|clinician|researcher|viewer|patient"
        ),
    ],
    centre: Annotated[
        list[str] | None, typer.Option("--centre", help="Centre code (repeatable).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Add a user with a password (random and shown once, or from stdin).

    Example: rtcohort users add jo --role clinician --centre AMS01 --password-stdin.
    User names match ^[a-z0-9][a-z0-9._-]{0,63}$ (never folded).
    """
    import secrets

    from cohort.permissions import Action, scope_for
    from cohort.users import add_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with _session() as session:
        scope_for(session, _actor(session), Action.MANAGE).require()
        secret = password if password is not None else secrets.token_urlsafe(15)
        add_user(session, username, role, centre or [], secret)
    shown = "" if password is not None else f" with password {secret} (shown once)"
    typer.echo(f"user {username} ({role}) added{shown}")


@users_app.command("list")
def users_list() -> None:
    """List users, roles and centres (managers only). Example: rtcohort users list."""
    from cohort.operations import users_list as run_list

    with _session() as session:
        rows = run_list(session, _actor(session))
    typer.echo(f"{'username':<24} {'role':<14} centres")
    for row in rows:
        typer.echo(f"{row.username:<24} {row.role:<14} {','.join(row.centres) or '-'}")


# ---------------------------------------------------------------- consent
@consent_app.command("record")
def consent_record(  # noqa: PLR0917
    patient: PatientArg = None,
    centre: CentreOpt = ...,  # type: ignore[assignment]
    state: Annotated[
        str,
        typer.Option(
            "--state", help="eligible|approached|consented|declined|withdrawn"
        ),
    ] = ...,  # type: ignore[assignment]
    key_file: KeyFileOpt = None,
    pseudonym: PseudonymOpt = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Consent form version.")
    ] = None,
    date: Annotated[
        str | None, typer.Option("--date", help="YYYY-MM-DD (default today).")
    ] = None,
    scope: Annotated[
        str | None, typer.Option("--scope", help="data,proms,linkage")
    ] = None,
    year_of_birth: Annotated[int | None, typer.Option("--year-of-birth")] = None,
    sex: Annotated[str | None, typer.Option("--sex", help="F|M")] = None,
    site: Annotated[
        str | None,
        typer.Option(
            "--site", help="breast|head_neck|lung|prostate|rectum|brain|other"
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Contact register: name.")
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Contact register: e-mail.")
    ] = None,
    phone: Annotated[
        str | None, typer.Option("--phone", help="Contact register: phone.")
    ] = None,
) -> None:
    """Record a consent state.

    Example:

    rtcohort consent record 123456 --centre AMS01 --key-file ams01.key --state consented
    --version 2.1 --date 2025-03-01 --year-of-birth 1956 --sex F --site breast
    """
    from cohort.contacts import ContactDetails
    from cohort.service import record_consent

    day = _date(date, "--date") or _today()
    with _session() as session:
        who = _Patient(patient, pseudonym, centre, key_file)
        contact = None
        if who.key is not None:
            contact = ContactDetails(
                name=name,
                email=email,
                phone=phone,
                date_offset_days=who.identity.date_offset_days,
            )
        event = record_consent(
            session,
            _actor(session),
            centre_code=centre,
            pseudonym=who.pseudonym,
            state=state,
            event_date=who.shift(day),
            version=version,
            scopes=scope.split(",") if scope is not None else None,
            year_of_birth=year_of_birth,
            sex=sex,
            site=site,
            key=who.key,
            contact=contact,
            data_dir=_data_dir(),
        )
        typer.echo(f"{who.pseudonym}: {event.state} recorded")
    if str(event.state) in {"declined", "withdrawn"}:
        from rtcohort.wiring import after_refusal

        after_refusal(open_engine())
        return
    if str(event.state) == "consented":
        # Datasets held for want of consent load now (ARCHITECTURE.md: etl gets the
        # consent decision passed in; the wiring runs the retry).
        from rtcohort.settings import get_settings
        from rtcohort.wiring import after_consent

        summary = after_consent(open_engine(), centre, get_settings().user)
        if summary.loaded:
            typer.echo(
                f"{summary.loaded} held dataset(s) loaded now that consent is recorded"
            )


# ---------------------------------------------------------------- follow-up
@followup_app.command("record")
def followup_record(  # noqa: PLR0917
    patient: PatientArg = None,
    centre: CentreOpt = ...,  # type: ignore[assignment]
    key_file: KeyFileOpt = None,
    pseudonym: PseudonymOpt = None,
    last_contact: Annotated[
        str | None, typer.Option("--last-contact", help="YYYY-MM-DD")
    ] = None,
    death: Annotated[str | None, typer.Option("--death", help="YYYY-MM-DD")] = None,
) -> None:
    """Record a last contact or a death.

    Example:

    rtcohort followup record 123456 --centre AMS01 --key-file ams01.key
    --death 2026-01-05
    """
    from cohort.service import record_followup

    if (last_contact is None) == (death is None):
        fail("give exactly one of --last-contact and --death")
    contact_day = _date(last_contact, "--last-contact")
    death_day = _date(death, "--death")
    with _session() as session:
        who = _Patient(patient, pseudonym, centre, key_file)
        record_followup(
            session,
            _actor(session),
            centre_code=centre,
            pseudonym=who.pseudonym,
            last_contact=who.shift(contact_day) if contact_day else None,
            death=who.shift(death_day) if death_day else None,
        )
        typer.echo(f"{who.pseudonym}: {'death' if death else 'last contact'} recorded")


# ---------------------------------------------------------------- schedule
@schedule_app.command("due")
def schedule_due_cmd(
    centre: CentreOpt,
    kind: Annotated[
        str | None, typer.Option("--kind", help="toxicity|prom (default both)")
    ] = None,
    key_file: KeyFileOpt = None,
    today: Annotated[
        str | None, typer.Option("--today", help="YYYY-MM-DD (default today).")
    ] = None,
) -> None:
    """List due, overdue and missed assessments of a centre.

    Example:

    rtcohort schedule due --centre AMS01 --kind prom --key-file ams01.key
    """
    from cohort.schedule import Kind
    from cohort.service import schedule_due
    from etl.deid.keys import load_key

    kinds: tuple[Kind, ...] = (Kind.TOXICITY, Kind.PROM)
    if kind is not None:
        try:
            kinds = (Kind(kind),)
        except ValueError:
            fail(f"--kind {kind!r}: use toxicity|prom")
    day = _date(today, "--today") or _today()
    with _session() as session:
        key = load_key(key_file, centre.strip().upper()) if key_file else None
        items = schedule_due(
            session,
            _actor(session),
            centre_code=centre,
            today=day,
            kinds=kinds,
            key=key,
        )
        from cohort.centres import get_centre
        from cohort.contacts import date_offsets

        offsets = (
            date_offsets(session, key, get_centre(session, centre).care_site_id)
            if key
            else {}
        )
    header = ("pseudonym", "timepoint", "kind", "target", "window")
    typer.echo(
        f"{header[0]:<34} {header[1]:<9} {header[2]:<9} {header[3]:<10} "
        f"{header[4]:<22} status"
    )
    for i in items:
        back = datetime.timedelta(days=-offsets.get(i.person_id, 0))
        typer.echo(
            f"{i.pseudonym:<34} {i.timepoint:<9} {i.kind.value:<9} "
            f"{(i.target_date + back).isoformat():<10} "
            f"{(i.window_start + back).isoformat()}.."
            f"{(i.window_end + back).isoformat()} "
            f"{i.status.value}"
        )
    counts = {
        s: sum(1 for i in items if i.status.value == s)
        for s in ("due", "overdue", "missed")
    }
    typer.echo(", ".join(f"{n} {s}" for s, n in counts.items()))


# ---------------------------------------------------------------- invitations
def invite(  # noqa: PLR0917
    centre: CentreOpt,
    timepoint: Annotated[str, typer.Option("--timepoint", help="baseline|eot|m3|...")],
    key_file: KeyFileOpt = None,
    today: Annotated[str | None, typer.Option("--today", help="YYYY-MM-DD")] = None,
    smtp_host: Annotated[
        str | None, typer.Option("--smtp-host", envvar="RTCOHORT_SMTP_HOST")
    ] = None,
    smtp_port: Annotated[
        int, typer.Option("--smtp-port", envvar="RTCOHORT_SMTP_PORT")
    ] = 25,
    from_address: Annotated[
        str, typer.Option("--from", envvar="RTCOHORT_MAIL_FROM")
    ] = "rtcohort@localhost",
    link_base: Annotated[
        str, typer.Option("--link-base", envvar="RTCOHORT_LINK_BASE")
    ] = "http://localhost:8501/prom?t=",
    print_links: Annotated[
        bool,
        typer.Option(
            "--print", help="Write the new links as JSON lines; queue no e-mail."
        ),
    ] = False,
    pseudonym: Annotated[
        str | None,
        typer.Option("--pseudonym", help="One patient, even outside the window."),
    ] = None,
) -> None:
    """Invite patients whose PROM at a timepoint is due; send the outbox.

    Example:

    rtcohort invite --centre AMS01 --timepoint m3 --key-file ams01.key --smtp-host mail

    With --print the links are written to stdout as JSON lines (pseudonym,
    timepoint, url, expires) for SMS or paper, and no e-mail is queued.
    """
    if print_links or pseudonym is not None:
        _invite_print(centre, timepoint, key_file, today, link_base, pseudonym)
        return
    from cohort.centres import get_centre
    from cohort.contacts import read_contacts
    from cohort.invitations import load_signing_key
    from cohort.outbox import SmtpSender, deliver, pending
    from cohort.service import invite as run_invite
    from etl.deid.keys import load_key
    from rtcohort.settings import get_settings

    day = _date(today, "--today") or _today()
    signing_key = load_signing_key(get_settings().data_dir / "invitation-signing.key")
    with _session() as session:
        key = load_key(key_file, centre.strip().upper()) if key_file else None
        issued = run_invite(
            session,
            _actor(session),
            centre_code=centre,
            timepoint=timepoint,
            today=day,
            signing_key=signing_key,
            key=key,
        )
        sent = "no --smtp-host: messages wait in the outbox"
        if smtp_host and key is not None:
            contacts = read_contacts(
                session, key, get_centre(session, centre).care_site_id
            )
            report = deliver(
                session,
                SmtpSender(smtp_host, smtp_port, from_address),
                lambda pid: contacts[pid].email if pid in contacts else None,
                signing_key=signing_key,
                link_base=link_base,
            )
            sent = (
                f"sent {report.sent}, failed {report.failed} (kept in the outbox), "
                f"no address {report.no_address}"
            )
        waiting = len(pending(session))
    typer.echo(f"{len(issued)} invitations created; {sent}; {waiting} in the outbox")


def _invite_print(  # noqa: PLR0917
    centre: str,
    timepoint: str,
    key_file: Path | None,
    today: str | None,
    link_base: str,
    pseudonym: str | None,
) -> None:
    """`invite --print` / `--pseudonym`: links as JSON lines (cohort.invite_links)."""
    from cohort.invitations import load_signing_key
    from cohort.invite_links import issue_links
    from etl.deid.keys import load_key
    from rtcohort.settings import get_settings

    day = _date(today, "--today") or _today()
    signing_key = load_signing_key(get_settings().data_dir / "invitation-signing.key")
    with _session() as session:
        key = load_key(key_file, centre.strip().upper()) if key_file else None
        batch = issue_links(
            session,
            _actor(session),
            centre_code=centre,
            timepoint=timepoint,
            today=day,
            signing_key=signing_key,
            link_base=link_base,
            key=key,
            pseudonym=pseudonym,
        )
    for warning in batch.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for link in batch.links:
        typer.echo(link.as_json())
    typer.echo(f"{len(batch.links)} links issued (not e-mailed)", err=True)


# ---------------------------------------------------------------- projects
@project_app.command("create")
def project_create(  # noqa: PLR0917
    code: Annotated[str, typer.Argument(help="Project code.")],
    name: Annotated[str, typer.Option("--name")],
    protocol: Annotated[str, typer.Option("--protocol", help="Protocol reference.")],
    controller: Annotated[str, typer.Option("--controller", help="Data controller.")],
    expires: Annotated[str, typer.Option("--expires", help="YYYY-MM-DD")],
    centre_level: Annotated[
        bool,
        typer.Option("--centre-level", help="The protocol grants analysis by centre."),
    ] = False,
) -> None:
    """Create a project (and its pseudonym key, keys/projects/CODE.key).

    Example: rtcohort project create P1 --name "Breast NTCP"
    --protocol PR-2025-01 --controller "UMC" --expires 2027-12-31.
    """
    from cohort.service import create_project

    expires_on = _date(expires, "--expires")
    assert expires_on is not None
    with _session() as session:
        create_project(
            session,
            _actor(session),
            code,
            name=name,
            protocol=protocol,
            data_controller=controller,
            expires_on=expires_on,
            today=_today(),
            centre_level=centre_level,
        )
    typer.echo(f"project {code} created (expires {expires_on})")


@project_app.command("add-member")
def project_add_member(
    code: Annotated[str, typer.Argument(help="Project code.")],
    username: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help="lead|analyst")] = "analyst",
) -> None:
    """Add a member. Example: rtcohort project add-member P1 alice --role analyst."""
    from cohort.service import add_project_member

    with _session() as session:
        add_project_member(
            session, _actor(session), code, username, role, today=_today()
        )
    typer.echo(f"{username} is {role} of project {code}")


@project_app.command("attach")
def project_attach(  # noqa: PLR0917
    code: Annotated[str, typer.Argument(help="Project code.")],
    patient: PatientArg = None,
    centre: Annotated[str | None, typer.Option("--centre")] = None,
    key_file: KeyFileOpt = None,
    pseudonym: PseudonymOpt = None,
    rule_centre: Annotated[
        list[str] | None,
        typer.Option(
            "--rule-centre", help="Attach all consented patients of a centre."
        ),
    ] = None,
    rule_site: Annotated[
        list[str] | None,
        typer.Option(
            "--rule-site", help="Attach all consented patients with this site."
        ),
    ] = None,
) -> None:
    """Attach patients by hand or by rule.

    Examples
    --------
    rtcohort project attach P1 --pseudonym AMS01-ABC...;
    rtcohort project attach P1 --rule-centre AMS01 --rule-site breast
    """
    from cohort.projects import PatientRule
    from cohort.service import attach_to_project

    rule = PatientRule(rule_centre, rule_site) if rule_centre or rule_site else None
    if rule is not None and (patient or pseudonym):
        fail("give a patient or a rule, not both")
    if rule is None and patient is not None and centre is None:
        fail("PATIENT needs --centre and --key-file")
    with _session() as session:
        named = (
            None
            if rule is not None
            else _Patient(patient, pseudonym, centre or "", key_file).pseudonym
        )
        done = attach_to_project(
            session, _actor(session), code, today=_today(), pseudonym=named, rule=rule
        )
    typer.echo(f"{done.count} patients attached to project {code}")


# ---------------------------------------------------------------- withdrawal
def withdraw(  # noqa: PLR0917
    patient: PatientArg = None,
    centre: CentreOpt = ...,  # type: ignore[assignment]
    key_file: KeyFileOpt = None,
    pseudonym: PseudonymOpt = None,
    erase: Annotated[
        bool, typer.Option("--erase", help="Remove the person everywhere.")
    ] = False,
    date: Annotated[
        str | None, typer.Option("--date", help="YYYY-MM-DD (default today).")
    ] = None,
) -> None:
    """Withdraw consent; with --erase remove the person from every table.

    Example:

    rtcohort withdraw 123456 --centre AMS01 --key-file ams01.key --erase
    """
    from cohort.erasure_files import finish_erasure
    from cohort.service import withdraw as run_withdraw
    from rtcohort.settings import get_settings

    day = _date(date, "--date") or _today()
    with _session() as session:
        who = _Patient(patient, pseudonym, centre, key_file)
        result = run_withdraw(
            session,
            _actor(session),
            centre_code=centre,
            pseudonym=who.pseudonym,
            event_date=who.shift(day),
            erase=erase,
            data_dir=get_settings().data_dir,
        )
    if result.report is None:
        from rtcohort.wiring import after_refusal

        after_refusal(open_engine())
        typer.echo("consent withdrawn; data kept up to the withdrawal")
        return
    report = result.report
    with _session() as session:
        report.files_deleted = finish_erasure(
            session, get_settings().data_dir, report.orphan_files
        )
    typer.echo(f"erased: {report.rows} rows, {report.files_deleted} files")
    for table, count in sorted(report.rows_by_table.items()):
        typer.echo(f"  {table:<24} {count}")
    typer.echo("check: no row of the person remains")


# ---------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify() -> None:
    """Verify the audit MAC chain against the checkpoint log (exit 1 if broken).

    Example: rtcohort audit verify.
    """
    from cohort.operations import verify_audit

    with _session() as session:
        check, head = verify_audit(session, _actor(session))
    for problem in check.problems:
        typer.echo(problem, err=True)
    if not check.ok:
        fail(
            f"audit chain BROKEN: {len(check.problems)} problems "
            f"in {check.records} records",
            1,
        )
    typer.echo(
        f"audit chain intact: {check.records} records; head {head}; "
        f"checkpointed to record {check.checkpointed}"
    )


@audit_app.command("show")
def audit_show(
    person: Annotated[str, typer.Option("--person", help="Pseudonym.")],
) -> None:
    """Show the audit records of a person: ``rtcohort audit show --person P``."""
    from cohort import audit
    from cohort.service import audit_show as run_show

    with _session() as session:
        actor = _actor(session)
        records = run_show(session, actor, pseudonym=person)
        rows = [
            (r.record_id, r.recorded_at, r.actor, r.action, r.detail) for r in records
        ]
        audit.record(session, actor.username, "audit.read", f"{len(rows)} records")
    typer.echo(f"{'id':>6} {'when (UTC)':<26} {'user':<16} {'action':<20} detail")
    for rid, when, who, action, detail in rows:
        typer.echo(
            f"{rid:>6} {when.isoformat(timespec='seconds'):<26} {who:<16} "
            f"{action:<20} {detail}"
        )


def register(app: typer.Typer) -> None:
    """Register this area's commands on the root app."""
    app.add_typer(centre_app, name="centre")
    from rtcohort.cli.tokens import token_app

    users_app.add_typer(token_app, name="token")
    app.add_typer(users_app, name="users")
    app.add_typer(consent_app, name="consent")
    app.add_typer(followup_app, name="followup")
    app.add_typer(schedule_app, name="schedule")
    app.command("invite")(invite)
    app.add_typer(project_app, name="project")
    app.command("withdraw")(withdraw)
    app.add_typer(audit_app, name="audit")
