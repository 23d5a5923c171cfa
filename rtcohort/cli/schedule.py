"""`rtcohort schedule` and `rtcohort invite`: due assessments and PROM invitations.

Commands act as ``RTCOHORT_USER`` (default ``admin``) and are audited as that user.
Errors print one line and exit 2; nothing changes.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated

import typer

from rtcohort.cli.cohort_common import (
    CentreOpt,
    KeyFileOpt,
    current_actor,
    parse_date,
    session_scope,
    utc_today,
)
from rtcohort.cli.common import fail

__all__ = ["invite", "schedule_app"]

schedule_app = typer.Typer(help="Follow-up schedule.", no_args_is_help=True)


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
    day = parse_date(today, "--today") or utc_today()
    with session_scope() as session:
        key = load_key(key_file, centre.strip().upper()) if key_file else None
        items = schedule_due(
            session,
            current_actor(session),
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
    from cohort.invitations import SIGNING_KEY_FILE, load_signing_key
    from cohort.outbox import SmtpSender, deliver, pending
    from cohort.service import invite as run_invite
    from etl.deid.keys import load_key
    from rtcohort.settings import get_settings

    day = parse_date(today, "--today") or utc_today()
    signing_key = load_signing_key(get_settings().data_dir / SIGNING_KEY_FILE)
    with session_scope() as session:
        key = load_key(key_file, centre.strip().upper()) if key_file else None
        issued = run_invite(
            session,
            current_actor(session),
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
                + (
                    f", cancelled {report.cancelled} (declined, withdrew or died)"
                    if report.cancelled
                    else ""
                )
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
    from cohort.invitations import SIGNING_KEY_FILE, load_signing_key
    from cohort.invite_links import issue_links
    from etl.deid.keys import load_key
    from rtcohort.settings import get_settings

    day = parse_date(today, "--today") or utc_today()
    signing_key = load_signing_key(get_settings().data_dir / SIGNING_KEY_FILE)
    with session_scope() as session:
        key = load_key(key_file, centre.strip().upper()) if key_file else None
        batch = issue_links(
            session,
            current_actor(session),
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
