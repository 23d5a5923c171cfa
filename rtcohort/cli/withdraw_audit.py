"""`rtcohort withdraw` and `rtcohort audit`: withdrawal/erasure and the audit trail.

Commands act as ``RTCOHORT_USER`` (default ``admin``) and are audited as that user.
Errors print one line and exit 2; nothing changes.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rtcohort.cli.cohort_common import (
    CentreOpt,
    KeyFileOpt,
    NamedPatient,
    PatientArg,
    PseudonymOpt,
    current_actor,
    parse_date,
    session_scope,
    utc_today,
)
from rtcohort.cli.common import fail, open_engine

__all__ = ["audit_app", "withdraw"]

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)


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

    day = parse_date(date, "--date") or utc_today()
    with session_scope() as session:
        who = NamedPatient(patient, pseudonym, centre, key_file)
        result = run_withdraw(
            session,
            current_actor(session),
            centre_code=centre,
            pseudonym=who.pseudonym,
            event_date=who.shift(day),
            erase=erase,
            data_dir=get_settings().data_dir,
            key=who.key,
        )
    if result.report is None:
        from rtcohort.wiring import after_refusal

        after_refusal(open_engine())
        typer.echo("consent withdrawn; data kept up to the withdrawal")
        return
    report = result.report
    with session_scope() as session:
        report.files_deleted = finish_erasure(
            session, get_settings().data_dir, report.orphan_files, report.outside_files
        )
    typer.echo(f"erased: {report.rows} rows, {report.files_deleted} files")
    for table, count in sorted(report.rows_by_table.items()):
        typer.echo(f"  {table:<24} {count}")
    typer.echo("check: no row of the person remains")
    for line in report.unlinkable:
        typer.echo(line)


# ---------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify() -> None:
    """Verify the audit MAC chain against the checkpoint log (exit 1 if broken).

    Example: rtcohort audit verify.
    """
    from cohort.operations import verify_audit

    with session_scope() as session:
        check, head = verify_audit(session, current_actor(session))
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

    with session_scope() as session:
        actor = current_actor(session)
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
