"""Wiring between packages that may not import each other (ARCHITECTURE.md 1)."""

from __future__ import annotations

from sqlalchemy import Engine

__all__ = ["after_upgrade"]


def after_upgrade(engine: Engine) -> list[str]:
    """Run the steps other packages add to ``rtcohort db upgrade``; return messages.

    Creates the ``admin`` account once (password from ``RTCOHORT_ADMIN_PASSWORD``, or
    generated and returned in a message to be printed once) and the default
    follow-up protocol.
    """
    from cohort.schedule import ensure_protocol
    from cohort.users import ensure_admin
    from omop.engine import session_factory
    from rtcohort.settings import get_settings

    messages: list[str] = []
    configured = get_settings().admin_password
    password = configured.get_secret_value() if configured is not None else None
    with session_factory(engine).begin() as session:
        generated = ensure_admin(session, password)
        ensure_protocol(session)
    if generated is not None:
        messages.append(
            f"created user admin with password {generated} (shown once; "
            "set RTCOHORT_ADMIN_PASSWORD to choose it)"
        )
    return messages
