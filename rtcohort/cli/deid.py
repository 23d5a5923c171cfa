"""`rtcohort` commands owned by the `deid` area: keys, deid, receive, audit-copies."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from etl.deid.keys import CentreKey

__all__ = ["register"]

keys_app = typer.Typer(
    help="Centre pseudonymisation keys (never stored in the database).",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _load_key(path: Path, centre: str | None) -> CentreKey:
    from etl.deid.keys import load_key
    from etl.errors import KeyFileError

    try:
        return load_key(path, centre)
    except KeyFileError as exc:
        raise _fail(str(exc)) from None


@keys_app.command("new")
def keys_new(
    centre: str = typer.Option(..., "--centre", help="Centre code, e.g. AMS01."),
    out: Path = typer.Option(
        ..., "--out", help="Key file to create (never overwritten)."
    ),
) -> None:
    """Create a centre key file.

    Example: rtcohort keys new --centre AMS01 --out /secure/ams01.key

    Back the file up offline: a lost key ends linkage (the same patient can never get
    the same pseudonym again). The key records the consortium date-shift bound
    (RTCOHORT_DATE_SHIFT_MAX_DAYS, default 182 days).
    """
    from etl.deid.keys import write_key
    from etl.errors import KeyFileError
    from rtcohort.wiring import new_centre_key

    try:
        key = new_centre_key(centre)
        write_key(key, out)
    except KeyFileError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"created {out}: centre {key.centre}, fingerprint {key.fingerprint}")
    typer.echo("Back this file up now: a lost key ends linkage of new data to old.")


@keys_app.command("show")
def keys_show(key_file: Path = typer.Argument(..., help="A key file.")) -> None:
    """Print a key's centre, fingerprint and date-shift range (never the secret).

    Example: rtcohort keys show /secure/ams01.key
    """
    key = _load_key(key_file, None)
    low, high = key.date_offset_range_days
    typer.echo(f"centre       {key.centre}")
    typer.echo(f"fingerprint  {key.fingerprint}")
    typer.echo(f"created_utc  {key.created_utc}")
    typer.echo(
        f"date_shift   {low}..{high} days"
        + (" (legacy)" if key.legacy_date_shift else "")
    )
    if key.legacy_date_shift:
        typer.echo(
            "warning: legacy key: dates shifted by 1 to 10 years make ages wrong by as "
            "much; to move to the bounded shift make a new key and re-import "
            "(docs/pseudonymisation.md)",
            err=True,
        )


def deid(  # noqa: PLR0917
    source: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="Input folder."
    ),
    target: Path = typer.Argument(..., help="Output folder (same layout)."),
    centre: str = typer.Option(
        ..., "--centre", help="Centre code the key must belong to."
    ),
    key_file: Path = typer.Option(..., "--key-file", help="The centre key file."),
    report: Path | None = typer.Option(
        None, "--report", help="Write the JSON report here."
    ),
    quarantine: Path | None = typer.Option(
        None, "--quarantine", help="Copy rejected files here with a .reason.txt."
    ),
) -> None:
    """Pseudonymise a folder of DICOM files (PS3.15 E.1-1 with four options).

    Example: rtcohort deid export/ pseudo/ --centre AMS01 --key-file ams01.key
    --report r.json
    """
    from rich.progress import Progress

    from etl.deid.folder import deidentify_folder

    key = _load_key(key_file, centre)
    if (
        target.resolve() == source.resolve()
        or source.resolve() in target.resolve().parents
    ):
        raise _fail("OUT must not be IN or inside it")
    with Progress(transient=True) as bar:
        task = bar.add_task("pseudonymising", total=None)
        result = deidentify_folder(
            source,
            target,
            key,
            quarantine=quarantine,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if report is not None:
        report.write_text(result.to_json() + "\n", encoding="utf-8")
    counts = (
        ", ".join(f"{v} {k}" for k, v in sorted(result.counts.items())) or "nothing"
    )
    summary = f"{result.files} files: {counts}; {result.patients} patients"
    typer.echo(f"{summary}; key {key.fingerprint}")
    for item in result.quarantined:
        typer.echo(f"quarantined {item['file']}: {item['reason']}", err=True)


def receive(  # noqa: PLR0917
    port: int = typer.Option(11112, "--port", help="TCP port."),
    ae_title: str = typer.Option("RTCOHORT", "--ae-title", help="Our AE title."),
    inbox: Path = typer.Option(..., "--inbox", help="Inbox folder."),
    allowed_caller: list[str] = typer.Option(
        [], "--allowed-caller", help="Calling AE title accepted (repeat); none = any."
    ),
    pseudonymise: bool = typer.Option(False, "--deid", help="Pseudonymise on arrival."),
    centre: str | None = typer.Option(
        None, "--centre", help="Centre code (with --deid)."
    ),
    key_file: Path | None = typer.Option(
        None, "--key-file", help="Key file (with --deid)."
    ),
    quarantine: Path | None = typer.Option(
        None, "--quarantine", help="Quarantine folder (default: <INBOX>-quarantine)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
) -> None:
    """Run the DICOM node (C-STORE + C-ECHO) that files objects into an inbox.

    Example: rtcohort receive --port 11112 --ae-title RTCOHORT --inbox /data/inbox
    --allowed-caller ECLIPSE --deid --centre AMS01 --key-file ams01.key

    Stops cleanly on Ctrl-C or SIGTERM.
    """
    from etl.arrive.inbox import Inbox
    from etl.arrive.places import PlaceKind
    from etl.arrive.receiver import Receiver

    key = None
    if pseudonymise:
        if centre is None or key_file is None:
            raise _fail("--deid needs --centre and --key-file")
        key = _load_key(key_file, centre)
    elif centre is not None or key_file is not None:
        raise _fail("--centre/--key-file only with --deid")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    box = Inbox(inbox, quarantine)
    _register(PlaceKind.INBOX, box.root)
    _register(PlaceKind.RECEIVER_QUARANTINE, box.quarantine_dir)
    node = Receiver(
        box,
        ae_title=ae_title,
        port=port,
        host=host,
        allowed_callers=allowed_caller,
        key=key,
    )
    try:
        node.serve_forever()
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    typer.echo("receiver stopped")


def audit_copies(
    source: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="Input folder."
    ),
    target: Path = typer.Argument(..., help="Output folder (copy_1, copy_2, ...)."),
    copies: int = typer.Option(
        ..., "--copies", min=1, max=99, help="Number of copies."
    ),
    key_file: Path = typer.Option(..., "--key-file", help="The centre key file."),
) -> None:
    """Write N independently anonymised copies of a data set.

    Example: rtcohort audit-copies study/ audit/ --copies 3 --key-file ams01.key
    """
    from etl.arrive.places import PlaceKind
    from etl.deid.audit_copies import AuditCopyCollisionError, write_audit_copies

    key = _load_key(key_file, None)
    _register(PlaceKind.AUDIT_COPIES, target)
    try:
        report = write_audit_copies(source, target, key, copies)
    except AuditCopyCollisionError as exc:
        raise _fail(str(exc), 1) from None
    typer.echo(f"{report.files} files x {copies} copies: {report.written} written")
    for n, names in sorted(report.pseudonyms.items()):
        typer.echo(f"copy_{n}: {json.dumps(names)}")
    for item in report.quarantined:
        typer.echo(f"quarantined {item['file']}: {item['reason']}", err=True)


def _register(kind: str, folder: Path) -> None:
    """Record a folder outside the database in the data directory, for erasure."""
    from etl.arrive.places import register_place
    from rtcohort.settings import get_settings

    try:
        register_place(get_settings().data_dir, kind, folder)
    except OSError as exc:
        raise _fail(
            f"cannot register {folder} for erasure in the data directory: "
            f"{exc.strerror}"
        ) from None


def register(app: typer.Typer) -> None:
    """Register this area's commands on the root app."""
    app.add_typer(keys_app, name="keys")
    app.command("deid")(deid)
    app.command("receive")(receive)
    app.command("audit-copies")(audit_copies)
