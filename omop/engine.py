"""Engines and sessions for the embedded SQLite default and PostgreSQL.

No engine is created at import time: callers build one from a URL (usually
``Settings.resolved_database_url()``) and own its life.

Examples
--------
>>> engine = make_engine("sqlite://")
>>> factory = session_factory(engine)
>>> with factory.begin() as session:
...     session.execute(text("select 1")).scalar_one()
1
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from omop.errors import DatabaseUnavailableError
from omop.private_files import make_private_dirs, open_private

__all__ = ["check_connection", "make_engine", "session_factory", "text"]


def _configure_sqlite(engine: Engine, immediate: bool) -> None:
    """WAL, foreign keys, secure delete, SAVEPOINT-capable transactions (pysqlite).

    With ``immediate`` every transaction starts with ``BEGIN IMMEDIATE``: it takes
    the write lock first (waiting up to the busy timeout) instead of reading a
    snapshot and asking for the lock at its first write. A read-then-write
    transaction on a deferred ``BEGIN`` is refused at once ("database is locked",
    no waiting) when another connection committed after its first read, because
    its snapshot is stale; the web app's reads all write an audit record, so its
    engine uses ``immediate``.
    """
    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself: pysqlite's implicit transactions break
        # SAVEPOINT and silently ignore PRAGMA foreign_keys inside a transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows are overwritten with zeros, so an erased person's values do
        # not survive in free pages of the file (cohort.erasure).
        cursor.execute("PRAGMA secure_delete=ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


def _create_sqlite_file(path: Path) -> None:
    """Create an empty database file 0600 (SQLite copies its mode to -wal/-shm)."""
    make_private_dirs(path.parent)
    try:
        fd = open_private(path, os.O_WRONLY | os.O_EXCL)
    except FileExistsError:
        return
    os.close(fd)


def make_engine(url: str, *, sqlite_immediate: bool = False, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (a new SQLite file is created closed to others).

    A new SQLite database file is created empty with mode 0600 in folders created
    0700 (:mod:`omop.private_files`), so SQLite gives its ``-wal`` and ``-shm``
    files the same mode; an existing file is left as it is.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///path/file.sqlite`` or
        ``postgresql+psycopg://user@host:port/db``.
    sqlite_immediate
        On SQLite, start every transaction with ``BEGIN IMMEDIATE`` (for callers
        whose reads write, such as audited reads; see :func:`_configure_sqlite`).
        A second transaction opened while one is still open on another connection
        then waits for it, so such callers must not nest sessions. Ignored on
        PostgreSQL.
    **kwargs
        Passed to :func:`sqlalchemy.create_engine`.

    Raises
    ------
    DatabaseUnavailableError
        When the URL cannot be parsed or its driver is not installed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailableError(
            f"cannot parse database URL: {exc}; "
            "hint: RTCOHORT_DATABASE_URL=postgresql+psycopg://user@host:5432/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _create_sqlite_file(Path(parsed.database))
    elif backend == "postgresql":
        if parsed.get_driver_name() in ("", "psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_pre_ping", True)
    else:
        raise DatabaseUnavailableError(
            f"unsupported database backend {backend!r}; "
            "hint: use sqlite:///path or postgresql+psycopg://..."
        )
    try:
        engine = create_engine(parsed, **kwargs)
    except NoSuchModuleError as exc:
        raise DatabaseUnavailableError(f"database driver missing: {exc}") from None
    if backend == "sqlite":
        _configure_sqlite(engine, sqlite_immediate)
    return engine


def check_connection(engine: Engine) -> None:
    """Open and close one connection, turning failures into one readable error.

    Raises
    ------
    DatabaseUnavailableError
        Naming the database (without password) and a hint.
    """
    safe = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailableError(
            f"cannot connect to {safe}: {reason}; hint: check RTCOHORT_DATABASE_URL "
            "(host, port, user, database) and that the server is running"
        ) from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory; use ``with factory.begin() as session:``."""
    return sessionmaker(bind=engine, expire_on_commit=False)
