"""Wiring between packages that may not import each other (ARCHITECTURE.md 1)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Engine
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from etl.deid.keys import CentreKey
    from etl.ingest.run import ImportOptions, ImportSummary
    from omop.private_files import LoosePath

__all__ = [
    "CohortExportAccess",
    "after_consent",
    "after_upgrade",
    "configure_audit",
    "ingest_consent_check",
    "ingest_options",
    "ingest_project_attach",
    "loose_private_paths",
    "new_centre_key",
]


def configure_audit(engine: Engine | None = None) -> None:
    """Point the audit trail at the key and checkpoint log of the settings.

    Sets the process default (read from the settings at each use) and, given an
    engine, binds that engine to the files the settings name now.
    """
    from cohort.audit import AuditFiles, bind, set_files_provider
    from rtcohort.settings import get_settings

    def files() -> AuditFiles:
        settings = get_settings()
        return AuditFiles(
            settings.resolved_audit_key_file(), settings.resolved_audit_checkpoints()
        )

    set_files_provider(files)
    if engine is not None:
        bind(engine, files())


def after_upgrade(engine: Engine) -> list[str]:
    """Run the steps other packages add to ``rtcohort db upgrade``; return messages.

    Creates the ``admin`` account once (password from ``RTCOHORT_ADMIN_PASSWORD``, or
    generated and returned in a message to be printed once), the default
    follow-up protocol and the audit key (keying an existing unkeyed chain).
    """
    from cohort.audit import files_for
    from cohort.audit_check import ensure_key
    from cohort.protocol import ensure_protocol
    from cohort.users import ensure_admin
    from omop.engine import session_factory
    from rtcohort.settings import get_settings

    messages: list[str] = []
    configured = get_settings().admin_password
    password = configured.get_secret_value() if configured is not None else None
    configure_audit(engine)
    key_file = files_for(engine).key_file
    had_key = key_file.exists()
    try:
        with session_factory(engine).begin() as session:
            messages.extend(ensure_key(session))
            generated = ensure_admin(session, password)
            ensure_protocol(session)
    except BaseException:
        if not had_key:  # the chain was not keyed: the new key must not survive
            key_file.unlink(missing_ok=True)
        raise
    if generated is not None:
        messages.append(
            f"created user admin with password {generated} (shown once; "
            "set RTCOHORT_ADMIN_PASSWORD to choose it)"
        )
    return messages


def loose_private_paths() -> list[LoosePath]:
    """Return the data folder's entries and SQLite files that others may open.

    Checked: the data directory, each entry directly in it (database, ``files``,
    ``quarantine``, keys, ...) and the SQLite database with its ``-wal`` and
    ``-shm`` files wherever the URL puts them. Everything rtcohort creates there is
    0700 / 0600 (:mod:`omop.private_files`); a looser mode was set by someone else.
    """
    from sqlalchemy.engine import make_url

    from omop.private_files import find_loose
    from rtcohort.settings import get_settings

    settings = get_settings()
    extra: list[Path] = []
    url = make_url(settings.resolved_database_url())
    database = url.database or ":memory:"
    if url.get_backend_name() == "sqlite" and database != ":memory:":
        db = Path(database)
        extra = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return find_loose(settings.data_dir, extra)


def new_centre_key(centre: str) -> CentreKey:
    """Create a centre key bounded by the consortium date-shift setting.

    ``RTCOHORT_DATE_SHIFT_MAX_DAYS`` (default 182) is recorded in the key, which keeps
    it: later changes of the setting do not move the dates of existing data.
    """
    from etl.deid.keys import new_key
    from rtcohort.settings import get_settings

    return new_key(centre, date_shift_max_days=get_settings().date_shift_max_days)


# -- DICOM-RT ingest (etl) <- cohort: consent check, project attach, export access ----


def ingest_consent_check() -> Callable[[Session, str], bool]:
    """Return the ETL consent check (whether a pseudonym consents to data use)."""
    from cohort.consent import has_consent

    def check(session: Session, person_source_value: str) -> bool:
        return has_consent(session, person_source_value)

    return check


def ingest_project_attach(actor: str) -> Callable[[Session, str, int, str], None]:
    """Return the ETL's project hook: attach a person to a project (cohort rules)."""
    import datetime

    from cohort.projects import attach

    def hook(session: Session, project_code: str, person_id: int, rule: str) -> None:
        attach(
            session,
            project_code,
            [person_id],
            actor=actor,
            today=datetime.datetime.now(datetime.UTC).date(),
            rule=rule,
        )

    return hook


class CohortExportAccess:
    """Adapter of the cohort permission layer and audit trail to ``etl.store.export``.

    Raises :class:`cohort.errors.PermissionDeniedError` on construction when the user
    may not export.
    """

    def __init__(self, session: Session, username: str) -> None:
        from cohort.permissions import Action, scope_for
        from cohort.service import acting_user

        user = acting_user(session, username)
        self.username = user.username
        self.scope = scope_for(session, user, Action.EXPORT).require()

    def person_filter(self, person_id: ColumnElement[int]) -> ColumnElement[bool]:
        """Return the SQL condition selecting the persons the user may export."""
        return self.scope.person_filter(person_id)

    def record(
        self, session: Session, action: str, detail: str, person_ids: Iterable[int]
    ) -> None:
        """Write the audit record of the read."""
        from cohort.audit import record

        record(session, self.username, action, detail, person_ids)


def ingest_options(
    centre: str, key_file: Path | None, *, workers: int = 1, project: str | None = None
) -> ImportOptions:
    """Build the import options of this installation (file store, quarantine, hooks)."""
    from etl.deid.keys import load_key
    from etl.ingest.run import ImportOptions
    from omop.filestore import FileStore
    from rtcohort.settings import get_settings

    settings = get_settings()
    key = load_key(key_file, centre) if key_file is not None else None
    return ImportOptions(
        centre=centre.strip().upper(),
        key=key,
        store=FileStore(settings.data_dir / "files"),
        quarantine_dir=settings.data_dir / "quarantine",
        consent=ingest_consent_check(),
        attach=ingest_project_attach(settings.user),
        project=project,
        workers=workers,
    )


def after_consent(engine: Engine, centre: str) -> ImportSummary:
    """Load the datasets held for want of consent (call after recording consent).

    Every ``rtcohort import`` run (and ``--watch`` cycle) does the same; this runs it
    at once, without new files and without the centre key (held files are already
    pseudonymised).
    """
    from etl.ingest.run import retry_held
    from omop.engine import session_factory

    return retry_held(session_factory(engine), ingest_options(centre, None))
