"""Test fixtures: a database per backend (SQLite and a real PostgreSQL server).

Every test that takes ``session`` or ``engine`` runs once on SQLite and once on
PostgreSQL. The PostgreSQL server is started by the harness (``tests/pgserver.py``);
when it cannot start, its tests are skipped, unless ``RTCOHORT_REQUIRE_POSTGRES=1``
(set by ``.ci/run``), which turns that into a failure.

Options: ``--db=sqlite`` or ``--db=postgresql`` restrict the backends.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.pgserver import PostgresServer, start_postgres

BACKENDS = ("sqlite", "postgresql")
_counter = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql", "both"),
        default="both",
        help="database backends to run the database tests on",
    )


def _wanted(config: pytest.Config, backend: str) -> bool:
    choice = config.getoption("--db")
    return choice in ("both", backend)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are cached per process; tests that change the environment need a reset."""
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def _data_dir_outside_checkout(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Default data directory (audit key, checkpoint log...) in a temporary folder.

    Tests that need their own set ``RTCOHORT_DATA_DIR`` with ``monkeypatch``.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RTCOHORT_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        yield


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except (RuntimeError, OSError) as exc:
        if os.environ.get("RTCOHORT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but could not start: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    yield server
    server.stop()


def _new_url(request: pytest.FixtureRequest, backend: str, tmp: Path) -> str:
    if not _wanted(request.config, backend):
        pytest.skip(f"--db excludes {backend}")
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'db{next(_counter)}.sqlite'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"rtcohort_{next(_counter)}")


@pytest.fixture(scope="session", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated and seeded database, shared by the tests of one backend."""
    from omop.database import upgrade
    from omop.engine import make_engine

    tmp = tmp_path_factory.mktemp("db")
    url = _new_url(request, request.param, tmp)
    eng = make_engine(url)
    upgrade(eng)
    from rtcohort.settings import get_settings
    from rtcohort.wiring import after_upgrade

    with pytest.MonkeyPatch.context() as mp:  # its own audit key and checkpoint log
        mp.setenv("RTCOHORT_DATA_DIR", str(tmp))
        get_settings.cache_clear()
        after_upgrade(eng)  # binds the engine to them
    get_settings.cache_clear()
    yield eng
    eng.dispose()


@pytest.fixture
def backend(engine: Engine) -> str:
    """Name of the backend of the current test: 'sqlite' or 'postgresql'."""
    return engine.dialect.name


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test (commits become savepoints)."""
    connection = engine.connect()
    transaction = connection.begin()
    db_session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield db_session
    finally:
        db_session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a new, empty database (no schema) on each backend."""
    return _new_url(request, request.param, tmp_path)
