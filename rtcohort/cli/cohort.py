"""`rtcohort` commands owned by the `cohort` area.

The commands live in one module per group: :mod:`rtcohort.cli.consent` (centre, users,
consent, followup), :mod:`rtcohort.cli.schedule` (schedule, invite),
:mod:`rtcohort.cli.projects` (project) and :mod:`rtcohort.cli.withdraw_audit`
(withdraw, audit); their shared helpers are in :mod:`rtcohort.cli.cohort_common`.

Commands that touch patient data act as ``RTCOHORT_USER`` (default ``admin``) and are
audited as that user. Errors print one line and exit 2; nothing changes.
"""

from __future__ import annotations

import typer

from rtcohort.cli.consent import centre_app, consent_app, followup_app, users_app
from rtcohort.cli.projects import project_app
from rtcohort.cli.schedule import invite, schedule_app
from rtcohort.cli.withdraw_audit import audit_app, withdraw

__all__ = ["register"]


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
