"""Who runs a command: the operator (admin) or a user who proves it (ARCHITECTURE 5).

The CLI is the operator's tool: whoever holds the database URL is its administrator
(no ``RTCOHORT_USER``, or ``RTCOHORT_USER=admin``). Acting as any other user needs
that user's personal API token in ``RTCOHORT_TOKEN`` or, when standard input is a
terminal, the password. Both go through :func:`cohort.auth.sign_in`, the one sign-in
function of the CLI and the web app. Without valid credentials the command stops with
exit 2 ("authentication required"); the refusal is audited.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["authenticate"]

_LOG = logging.getLogger(__name__)
_prompted: dict[str, str] = {}  # the password typed once in this process, by user


def _password(username: str) -> str | None:
    if not sys.stdin.isatty():
        return None
    if username not in _prompted:
        _prompted[username] = typer.prompt(
            f"password for {username}", hide_input=True, err=True
        )
    return _prompted[username]


def _refuse(engine: Engine, username: str, reason: str) -> None:
    from cohort.audit import record_refusal

    try:
        record_refusal(engine, username[:64], "sign-in", reason)
    except Exception:
        _LOG.exception("could not audit a refused sign-in")


def authenticate(engine: Engine) -> str:
    """Return the name the command acts as, or exit 2 (audited) without credentials.

    The operator (``admin``) needs no credentials; anyone else signs in with
    :func:`cohort.auth.sign_in` (token first, else a password prompt on a terminal).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from cohort._time import utcnow
    from cohort.auth import sign_in
    from cohort.errors import AuthenticationError
    from cohort.users import ADMIN_USERNAME
    from omop.engine import session_factory
    from rtcohort.cli.common import fail
    from rtcohort.settings import get_settings

    settings = get_settings()
    username = settings.user
    if username == ADMIN_USERNAME:
        return username
    token = settings.token.get_secret_value() if settings.token is not None else None
    password = None if token is not None else _password(username)
    try:
        with session_factory(engine).begin() as session:
            sign_in(session, username, password=password, token=token, now=utcnow())
    except AuthenticationError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        _refuse(engine, username, "database not ready")
        fail(
            f"authentication required: cannot check the credentials of {username!r} "
            f"({type(exc).__name__}; is the database upgraded?)"
        )
    return username
