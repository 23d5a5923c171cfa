"""The server and the build of ``benchmarks/scale.py`` (see its docstring).

The PostgreSQL server keeps its data in ``/work/scale-pg`` (``--pgdata``) so the
database outlives the run: ``python benchmarks/scale.py start`` (re)starts it and
prints its URL; ``stop`` stops it. It is started like the test server
(``tests/pgserver.py``: Debian binaries, trust authentication, loopback only, run as
``postgres`` when started by root), on a fixed port (55432 unless ``--port``).
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.pgserver import PostgresServer, find_pg_bin

PORT = 55432
OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c shared_buffers=1GB -c work_mem=64MB "
    "-c maintenance_work_mem=512MB -c max_wal_size=8GB -c max_connections=50"
)


def server(pgdata: Path, port: int = PORT) -> PostgresServer:
    """Start (or find running) the benchmark server whose data live in ``pgdata``."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL binaries not found (Debian package postgresql)")
    run_as = "postgres" if os.geteuid() == 0 else None
    pgdata.mkdir(parents=True, exist_ok=True)
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    srv = PostgresServer(bin_dir=bin_dir, data_dir=pgdata, port=port, run_as=run_as)
    data = pgdata / "data"
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            srv._cmd("initdb", "-D", str(data), "-U", "rtcohort", "--auth=trust",
                     "-E", "UTF8", "--locale=C"),
            check=True, capture_output=True,
        )  # fmt: skip
    status = subprocess.run(
        srv._cmd("pg_ctl", "-D", str(data), "status"), capture_output=True, check=False
    )
    if status.returncode != 0:
        subprocess.run(
            srv._cmd("pg_ctl", "-D", str(data), "-o",
                     f"-p {port} -k {pgdata} {OPTIONS}",
                     "-l", str(pgdata / "server.log"), "-w", "-t", "120", "start"),
            check=True, capture_output=True,
        )  # fmt: skip
    return srv


def stop(srv: PostgresServer) -> None:
    """Stop the server cleanly (its data stay)."""
    subprocess.run(
        srv._cmd("pg_ctl", "-D", str(srv.data_dir / "data"), "-m", "fast", "stop"),
        check=False, capture_output=True,
    )  # fmt: skip


def database(srv: PostgresServer, name: str, *, fresh: bool) -> str:
    """Return the URL of database ``name`` (created when missing or ``fresh``)."""
    admin = srv.url("postgres")
    from sqlalchemy import create_engine

    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        )
        if exists and fresh:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            exists = None
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return srv.url(name)


def table_counts(engine: Engine) -> dict[str, int]:
    """Return the exact row count of every non-empty table."""
    with engine.connect() as conn:
        names = conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).all()
        counts = {
            n: int(conn.scalar(text(f'SELECT count(*) FROM "{n}"')) or 0) for n in names
        }
    return {n: c for n, c in sorted(counts.items()) if c}


def database_bytes(engine: Engine) -> int:
    """Return the size of the current database in bytes."""
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_database_size(current_database())")))


def raw_copy_seconds(engine: Engine, tables: list[str]) -> float:
    """Time a plain ``COPY FROM`` of the same rows into indexed copies of the tables.

    Each table is copied out to a file, then copied into ``CREATE TABLE ... (LIKE t
    INCLUDING ALL)`` (same columns, defaults and indexes, no foreign keys) in one
    transaction that is rolled back; only the ``COPY FROM`` is timed.
    """
    total = 0.0
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert conn is not None
        for name in tables:
            with tempfile.TemporaryFile() as buffer:
                with conn.cursor() as cur, cur.copy(f'COPY "{name}" TO STDOUT') as out:
                    for chunk in out:
                        buffer.write(chunk)
                conn.commit()
                buffer.seek(0)
                with conn.cursor() as cur:
                    cur.execute(
                        f'CREATE TEMP TABLE raw_copy (LIKE "{name}" INCLUDING ALL)'
                    )
                    started = time.perf_counter()
                    with cur.copy("COPY raw_copy FROM STDIN") as into:
                        while chunk := buffer.read(1 << 20):
                            into.write(chunk)
                    total += time.perf_counter() - started
                conn.rollback()
    finally:
        raw.close()
    return total


def save(path: Path, figures: dict[str, Any]) -> None:
    """Merge ``figures`` into the JSON file at ``path``."""
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(figures)
    path.write_text(json.dumps(old, indent=1, default=str))
