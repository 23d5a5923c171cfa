"""`rtcohort centre`, `users`, `consent`, `followup`: centres, accounts, vital status.

Commands act as ``RTCOHORT_USER`` (default ``admin``) and are audited as that user.
Errors print one line and exit 2; nothing changes.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rtcohort.cli.cohort_common import (
    CentreOpt,
    KeyFileOpt,
    NamedPatient,
    PatientArg,
    PseudonymOpt,
    current_actor,
    data_folder,
    parse_date,
    session_scope,
    utc_today,
)
from rtcohort.cli.common import fail, open_engine

__all__ = ["centre_app", "consent_app", "followup_app", "users_app"]

centre_app = typer.Typer(help="Centres (CARE_SITE).", no_args_is_help=True)
users_app = typer.Typer(help="Platform accounts and roles.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent and enrolment.", no_args_is_help=True)
followup_app = typer.Typer(
    help="Vital status: last contact, death.", no_args_is_help=True
)


@centre_app.command("add")
def centre_add(
    code: Annotated[str, typer.Argument(help="Centre code, e.g. AMS01.")],
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
) -> None:
    """Add a centre. Example: rtcohort centre add AMS01 --name "Amsterdam UMC"."""
    from cohort.operations import add_centre_as

    with session_scope() as session:
        site = add_centre_as(session, current_actor(session), code, name)
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
    email: Annotated[
        str | None,
        typer.Option("--email", help="E-mail for OpenID Connect sign-in (web app)."),
    ] = None,
) -> None:
    """Add a user with a password (random and shown once, or from stdin).

    Example: rtcohort users add jo --role clinician --centre AMS01 --password-stdin
    --email jo@example.org. User names match ^[a-z0-9][a-z0-9._-]{0,63}$ (never
    folded); the e-mail is stored lower-cased and matches a web sign-in through
    OpenID Connect to the account.
    """
    import secrets

    from cohort.operations import add_account

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    secret = password if password is not None else secrets.token_urlsafe(15)
    with session_scope() as session:
        add_account(
            session,
            current_actor(session),
            username,
            role=role,
            centres=centre or [],
            password=secret,
            email=email,
        )
    shown = "" if password is not None else f" with password {secret} (shown once)"
    typer.echo(f"user {username} ({role}) added{shown}")


@users_app.command("list")
def users_list() -> None:
    """List users, roles and centres (managers only). Example: rtcohort users list."""
    from cohort.operations import users_list as run_list

    with session_scope() as session:
        rows = run_list(session, current_actor(session))
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
    stage: Annotated[
        str | None,
        typer.Option(
            "--stage",
            help="Overall UICC/AJCC stage group 0|I|II|III|IV (e.g. IIIA); "
            "with consented only.",
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
    --stage IIA
    """
    from cohort.contacts import ContactDetails
    from cohort.service import record_consent

    day = parse_date(date, "--date") or utc_today()
    with session_scope() as session:
        who = NamedPatient(patient, pseudonym, centre, key_file)
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
            current_actor(session),
            centre_code=centre,
            pseudonym=who.pseudonym,
            state=state,
            event_date=who.shift(day),
            version=version,
            scopes=scope.split(",") if scope is not None else None,
            year_of_birth=year_of_birth,
            sex=sex,
            site=site,
            stage=stage,
            key=who.key,
            contact=contact,
            data_dir=data_folder(),
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
    contact_day = parse_date(last_contact, "--last-contact")
    death_day = parse_date(death, "--death")
    with session_scope() as session:
        who = NamedPatient(patient, pseudonym, centre, key_file)
        record_followup(
            session,
            current_actor(session),
            centre_code=centre,
            pseudonym=who.pseudonym,
            last_contact=who.shift(contact_day) if contact_day else None,
            death=who.shift(death_day) if death_day else None,
        )
        typer.echo(f"{who.pseudonym}: {'death' if death else 'last contact'} recorded")
