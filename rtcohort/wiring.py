"""Wiring between packages that may not import each other (ARCHITECTURE.md 1)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Engine
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from cohort.project_keys import ProjectPseudonyms
    from etl.deid.keys import CentreKey
    from etl.ingest.consent import ConsentDecision
    from etl.ingest.run import ImportOptions, ImportSummary
    from omop.private_files import LoosePath

__all__ = [
    "CohortExportAccess",
    "after_consent",
    "after_refusal",
    "after_upgrade",
    "configure_audit",
    "configure_project_keys",
    "ingest_consent_check",
    "ingest_options",
    "ingest_project_attach",
    "ingest_write_check",
    "loose_private_paths",
    "new_centre_key",
    "project_keys_folder",
]


def configure_audit(engine: Engine | None = None) -> None:
    """Point the audit trail at the key and checkpoint log of the settings.

    Sets the process default (read from the settings at each use) and, given an
    engine, binds that engine to the files the settings name now. Also points the
    project pseudonym keys at the settings (:func:`configure_project_keys`).
    """
    from cohort.audit import AuditFiles, bind, set_files_provider
    from rtcohort.settings import get_settings

    def files() -> AuditFiles:
        settings = get_settings()
        return AuditFiles(
            settings.resolved_audit_key_file(), settings.resolved_audit_checkpoints()
        )

    set_files_provider(files)
    configure_project_keys()
    if engine is not None:
        bind(engine, files())


def project_keys_folder() -> Path:
    """Return the folder of the project pseudonym keys: ``<data_dir>/keys/projects``."""
    from rtcohort.settings import get_settings

    return get_settings().data_dir / "keys" / "projects"


def configure_project_keys() -> None:
    """Point :mod:`cohort.project_keys` at :func:`project_keys_folder`."""
    from cohort.project_keys import set_keys_folder_provider

    set_keys_folder_provider(project_keys_folder)


def after_upgrade(engine: Engine) -> list[str]:
    """Run the steps other packages add to ``rtcohort db upgrade``; return messages.

    Creates the ``admin`` account once (password from ``RTCOHORT_ADMIN_PASSWORD``, or
    generated and returned in a message to be printed once), the default
    follow-up protocol and the audit key (keying an existing unkeyed chain), and
    writes CDM_SOURCE (name from ``RTCOHORT_CDM_SOURCE_NAME``).
    """
    from cohort.audit import files_for
    from cohort.audit_check import ensure_key
    from cohort.protocol import ensure_protocol
    from cohort.users import ensure_admin
    from omop.cdm_source import write_cdm_source
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
            write_cdm_source(session, get_settings().cdm_source_name)
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
    from sqlalchemy.exc import ArgumentError

    from omop.private_files import find_loose
    from rtcohort.settings import get_settings

    settings = get_settings()
    extra: list[Path] = []
    try:
        url = make_url(settings.resolved_database_url())
    except ArgumentError:  # not checked here: opening the engine says why
        return find_loose(settings.data_dir, extra)
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


def ingest_consent_check() -> Callable[[Session, str], ConsentDecision]:
    """Return the ETL consent door: load, hold (not yet consented) or refuse.

    The answer is read in the caller's transaction each time it is asked
    (:func:`cohort.consent_gate.data_use`): declined or withdrawn patients' datasets
    are refused, not held.
    """
    from cohort.consent_gate import DataUse, data_use
    from etl.ingest.consent import ConsentDecision

    decisions = {
        DataUse.ACCEPT: ConsentDecision.LOAD,
        DataUse.HOLD: ConsentDecision.HOLD,
        DataUse.REFUSE: ConsentDecision.REFUSE,
    }

    def check(session: Session, person_source_value: str) -> ConsentDecision:
        return decisions[data_use(session, pseudonym=person_source_value)]

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
    may not export. The person filter also re-checks consent in the export's
    transaction (:func:`cohort.consent_gate.consented_filter`); researchers and
    project exports see project pseudonyms (:meth:`view`).
    """

    def __init__(self, session: Session, username: str) -> None:
        from cohort.permissions import Action, scope_for
        from cohort.service import acting_user

        user = acting_user(session, username)
        self.username = user.username
        self.scope = scope_for(session, user, Action.EXPORT).require()

    def person_filter(self, person_id: ColumnElement[int]) -> ColumnElement[bool]:
        """Return the SQL condition selecting the persons the user may export."""
        from sqlalchemy import and_

        from cohort.consent_gate import consented_filter

        return and_(self.scope.person_filter(person_id), consented_filter(person_id))

    def view(self, session: Session, project: str | None) -> ProjectPseudonyms | None:
        """Return the project pseudonyms the reader sees (None: stored pseudonyms).

        See :func:`cohort.patient_export.project_view`.
        """
        from cohort.patient_export import project_view

        return project_view(session, self.scope, project, project_keys_folder())

    def record(
        self, session: Session, action: str, detail: str, person_ids: Iterable[int]
    ) -> None:
        """Write the audit record of the read."""
        from cohort.audit import record

        record(session, self.username, action, detail, person_ids)


def ingest_write_check(actor: str) -> Callable[[Session, str], None]:
    """Return the ETL's permission check: ``actor`` may write to the centre."""
    from cohort.operations import require_centre_write

    def check(session: Session, centre: str) -> None:
        require_centre_write(session, actor, centre)

    return check


def ingest_options(
    centre: str,
    key_file: Path | None,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    project: str | None = None,
    actor: str | None = None,
) -> ImportOptions:
    """Build the import options of this installation (file store, quarantine, hooks).

    ``actor`` (default ``RTCOHORT_USER``, signed in by the CLI) must be allowed to
    write to ``centre``; the import checks it before reading anything. ``scheduler``
    (``tcp://HOST:PORT``) sends the per-file and per-dataset work to a Dask cluster.
    """
    from etl.deid.keys import load_key
    from etl.ingest.run import ImportOptions
    from omop.filestore import FileStore
    from rtcohort.settings import get_settings

    settings = get_settings()
    who = actor if actor is not None else settings.user
    key = load_key(key_file, centre) if key_file is not None else None
    return ImportOptions(
        centre=centre.strip().upper(),
        key=key,
        store=FileStore(settings.data_dir / "files"),
        quarantine_dir=settings.data_dir / "quarantine",
        consent=ingest_consent_check(),
        attach=ingest_project_attach(who),
        authorise=ingest_write_check(who),
        project=project,
        workers=workers,
        scheduler=scheduler,
    )


def after_consent(
    engine: Engine, centre: str, actor: str | None = None
) -> ImportSummary:
    """Load the datasets held for want of consent (call after recording consent).

    Every ``rtcohort import`` run (and ``--watch`` cycle) does the same; this runs it
    at once, without new files and without the centre key (held files are already
    pseudonymised).
    """
    from etl.ingest.catalogue import retry_held
    from omop.engine import session_factory

    return retry_held(
        session_factory(engine), ingest_options(centre, None, actor=actor)
    )


def after_refusal(engine: Engine) -> int:
    """Delete the files held for persons who declined or withdrew (after commit).

    :func:`cohort.service.record_consent` and :func:`cohort.service.withdraw`
    purge the held rows and journal their files; this deletes them. Returns how
    many files were deleted.
    """
    from cohort.erasure_files import finish_erasure
    from omop.engine import session_factory
    from rtcohort.settings import get_settings

    with session_factory(engine).begin() as session:
        return finish_erasure(session, get_settings().data_dir)
