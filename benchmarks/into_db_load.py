"""Rate of the bulk ``--into-db`` load alone, and a dump of what it wrote.

Simulates ``CENTRES x PATIENTS`` (seed 1), then times
:func:`cohort.simulate.bulk_load.load_cohort_bulk` into a fresh migrated SQLite file
(or, with ``--postgres``, a throwaway PostgreSQL of :mod:`tests.pgserver`): wall
and process CPU time, patients/s and rows/s (rows written = rows after minus rows
before). The centres' keys are derived from their codes, so that two runs (two
versions of the code) write the same rows; ``--dump FILE`` writes every table,
rows sorted, with the load's own timestamps (``recorded_at``, ``loaded_at``, ...)
replaced by ``NOW``: equal dumps are equal database contents. ``--profile FILE``
saves a cProfile of the load. Not run by ``make test``::

    nice -n 10 python benchmarks/into_db_load.py 2 150 --dump /tmp/a.dump
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, text

from cohort.simulate.bulk_load import load_cohort_bulk
from cohort.simulate.national import simulate_national
from cohort.simulate.params import SimulationParams
from etl.deid.keys import CentreKey
from omop.database import upgrade
from omop.engine import make_engine, session_factory
from omop.filestore import FileStore
from tests.pgserver import start_postgres


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as c:
        return {
            name: [tuple(r) for r in c.execute(text(f'SELECT * FROM "{name}"'))]
            for name in sorted(inspect(engine).get_table_names())
        }


def _cell(value: object, started: datetime.datetime, slack: float) -> str:
    moment = value
    if isinstance(value, str) and len(value) >= 19 and value[10] in " T":
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            moment = value
    if isinstance(moment, datetime.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(datetime.UTC)
        naive = moment.replace(tzinfo=None)
        if abs((naive - started).total_seconds()) < 7200 + slack:  # UTC or local
            return "NOW"
    return repr(value)


def _dump(tables: dict[str, list[tuple[Any, ...]]], path: Path, started, slack) -> None:  # type: ignore[no-untyped-def]
    with path.open("w") as f:
        for name, rows in tables.items():
            f.write(f"## {name} {len(rows)}\n")
            lines = ("|".join(_cell(v, started, slack) for v in r) for r in rows)
            f.writelines(f"{line}\n" for line in sorted(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("centres", type=int)
    ap.add_argument("patients", type=int)
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--dump", type=Path)
    ap.add_argument("--profile", type=Path)
    args = ap.parse_args()
    cohort = simulate_national(
        SimulationParams(centres=args.centres, patients=args.patients, seed=1)
    )
    keys = {
        c.code: CentreKey(
            c.code.upper(), hashlib.sha256(c.code.encode()).digest(),
            "2026-01-01T00:00:00Z", 3650,
        )
        for c in cohort.practices
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        server = start_postgres() if args.postgres else None
        url = (
            server.create_database("into_db_load")
            if server
            else f"sqlite:///{tmp}/load.sqlite"
        )
        try:
            engine = make_engine(url)
            upgrade(engine)
            before = sum(len(r) for r in _rows(engine).values())
            started = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            profile = cProfile.Profile() if args.profile else None
            wall, cpu = time.perf_counter(), time.process_time()
            if profile:
                profile.enable()
            counts = load_cohort_bulk(
                session_factory(engine), cohort, keys=keys,
                # a fixed root: image_occurrence holds the file paths
                store=FileStore(Path("/tmp/into_db_load_files")),
            )  # fmt: skip
            if profile:
                profile.disable()
                profile.dump_stats(args.profile)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            tables = _rows(engine)
            written = sum(len(r) for r in tables.values()) - before
            if args.dump:
                _dump(tables, args.dump, started, wall)
            engine.dispose()
        finally:
            if server:
                server.stop()
    n = counts.persons
    print(f"{'PostgreSQL' if args.postgres else 'SQLite'}: {n} patients, "
          f"{written} rows; wall {wall:.1f} s = {n / wall:.1f} patients/s, "
          f"{written / wall:,.0f} rows/s; process CPU {cpu:.1f} s = "
          f"{n / cpu:.1f} patients/s")  # fmt: skip


if __name__ == "__main__":
    main()
