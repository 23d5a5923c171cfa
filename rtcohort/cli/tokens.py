"""`rtcohort users token create|revoke`: personal API tokens (``RTCOHORT_TOKEN``).

The token is printed once, as the last word of the output; the database keeps its
SHA-256 (:mod:`cohort.auth`). A user may handle their own tokens, an admin anyone's.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from rtcohort.cli.common import fail, open_engine

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from omop.cohort_tables import AppUser

__all__ = ["token_app"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@contextmanager
def _session() -> Iterator[Session]:
    """One transaction as the signed-in user; an RTCohortError exits 2."""
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


token_app = typer.Typer(
    help="Personal API tokens (RTCOHORT_TOKEN).", no_args_is_help=True
)


@token_app.command("create")
def token_create(
    username: Annotated[str, typer.Argument(help="User name.")],
    days: Annotated[int, typer.Option("--days", help="Valid for N days.")] = 90,
) -> None:
    """Create a personal API token, printed once as the last word.

    Example: rtcohort users token create jo --days 30; then RTCOHORT_USER=jo
    RTCOHORT_TOKEN=<token> rtcohort schedule due --centre AMS01.
    """
    from cohort.auth import create_token

    with _session() as session:
        issued = create_token(session, _actor(session), username, days=days, now=_now())
    typer.echo(
        f"token for {issued.username}, expires "
        f"{issued.expires_at.isoformat(timespec='minutes')} (shown once): "
        f"{issued.token}"
    )


@token_app.command("revoke")
def token_revoke(username: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Revoke every token of a user. Example: rtcohort users token revoke jo."""
    from cohort.auth import revoke_tokens

    with _session() as session:
        n = revoke_tokens(session, _actor(session), username, now=_now())
    typer.echo(f"{n} token(s) of {username} revoked")
