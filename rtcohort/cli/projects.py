"""`rtcohort project`: collaboration projects, members and attached patients.

Commands act as ``RTCOHORT_USER`` (default ``admin``) and are audited as that user.
Errors print one line and exit 2; nothing changes.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rtcohort.cli.cohort_common import (
    KeyFileOpt,
    NamedPatient,
    PatientArg,
    PseudonymOpt,
    current_actor,
    parse_date,
    session_scope,
    utc_today,
)
from rtcohort.cli.common import fail

__all__ = ["project_app"]

project_app = typer.Typer(help="Collaboration projects.", no_args_is_help=True)


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

    expires_on = parse_date(expires, "--expires")
    assert expires_on is not None
    with session_scope() as session:
        create_project(
            session,
            current_actor(session),
            code,
            name=name,
            protocol=protocol,
            data_controller=controller,
            expires_on=expires_on,
            today=utc_today(),
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

    with session_scope() as session:
        add_project_member(
            session, current_actor(session), code, username, role, today=utc_today()
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
    with session_scope() as session:
        named = (
            None
            if rule is not None
            else NamedPatient(patient, pseudonym, centre or "", key_file).pseudonym
        )
        done = attach_to_project(
            session,
            current_actor(session),
            code,
            today=utc_today(),
            pseudonym=named,
            rule=rule,
        )
    typer.echo(f"{done.count} patients attached to project {code}")
