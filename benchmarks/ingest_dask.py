"""Ingest patients/minute: in-process, a 2-process pool, a 2-worker Dask cluster.

The same synthetic patients as ``ingest_throughput.py`` (the phantom writer's
multi-structure spec: CT of 100 slices, RTSTRUCT with 15 structures, RTPLAN, RTDOSE),
each consented first, are imported into a fresh database per mode (a throw-away
PostgreSQL server from ``tests/pgserver.py``, or SQLite with ``--backend sqlite``):

- ``in-process``: ``rtcohort import`` without options;
- ``pool``: ``--workers 2`` (local processes);
- ``dask``: ``--scheduler`` of a ``distributed.LocalCluster`` of 2 worker processes
  with one thread each on loopback (its start-up is timed apart: a backfill cluster is
  already running).

Printed per mode: wall seconds, patients per minute, reading / DVH / loading seconds,
and the 1-minute load average before and after (the machine is shared: read the
figures against it). The rows of the three databases are compared (surrogate ids
aside) so a mode that loads something else is caught.

Run: ``.venv/bin/python benchmarks/ingest_dask.py [--patients 20] [--backend sqlite]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest_throughput import _consent_patients, phantoms  # noqa: E402


def _url(args: argparse.Namespace, server: Any, data: Path, mode: str) -> str:
    if args.backend == "sqlite":
        return f"sqlite:///{data / f'{mode}.sqlite'}"
    return str(server.create_database(f"bench_dask_{mode.replace('-', '_')}"))


def _run(  # noqa: PLR0917
    args: argparse.Namespace,
    url: str,
    folders: list[Path],
    data: Path,
    mode: str,
    scheduler: str | None,
) -> dict[str, Any]:
    """Import the patients into a fresh database; return the figures and the rows."""
    from etl.deid.keys import CentreKey
    from etl.ingest.run import ImportOptions, run_import
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory
    from omop.filestore import FileStore
    from rtcohort.wiring import after_upgrade, ingest_consent_check
    from tests.etl.ingest_db import Db, contents

    engine = make_engine(url)
    upgrade(engine)
    after_upgrade(engine)
    factory = session_factory(engine)
    key = CentreKey("BENCH", bytes(range(32)))  # one key: the same pseudonyms
    with factory.begin() as session:
        _consent_patients(session, key, args.patients)
    root = data / mode
    opts = ImportOptions(
        centre="BENCH",
        key=key,
        store=FileStore(root / "files"),
        quarantine_dir=root / "quarantine",
        consent=ingest_consent_check(),
        workers=2 if mode == "pool" else 1,
        scheduler=scheduler,
    )
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    summary = run_import(factory, folders, opts)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    rows = contents(Db(engine, factory, root))
    engine.dispose()
    if summary.loaded != args.patients:
        raise SystemExit(f"{mode}: loaded {summary.loaded} of {args.patients}")
    return {
        "mode": mode,
        "wall": wall,
        "ppm": args.patients / wall * 60,
        "read": summary.read_s,
        "dvh": summary.dvh_s,
        "load": summary.load_s,
        "load_avg": (load_before, load_after),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"),
                        default="postgresql")  # fmt: skip
    args = parser.parse_args()

    from distributed import LocalCluster

    folders = phantoms(args.patients, 2)
    server = None
    if args.backend == "postgresql":
        from tests.pgserver import start_postgres

        server = start_postgres()
    data = Path(tempfile.mkdtemp(prefix="ingest_dask_"))
    results = []
    try:
        for mode in ("in-process", "pool"):
            url = _url(args, server, data, mode)
            results.append(_run(args, url, folders, data, mode, None))
        t0 = time.perf_counter()
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=":0",
        )  # fmt: skip
        cluster_s = time.perf_counter() - t0
        try:
            url = _url(args, server, data, "dask")
            results.append(
                _run(args, url, folders, data, "dask", cluster.scheduler_address)
            )
        finally:
            cluster.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(data, ignore_errors=True)

    n_files = sum(1 for f in folders for _ in f.glob("*.dcm"))
    print(
        f"\n{args.patients} patients, {n_files} files, {args.backend}, "
        f"{os.cpu_count()} CPUs; Dask cluster start-up {cluster_s:.1f} s"
    )
    print(f"{'mode':<12}{'wall s':>8}{'pat/min':>9}{'read s':>8}{'DVH s':>8}"
          f"{'load s':>8}  load avg before/after  same rows")  # fmt: skip
    for r in results:
        same = "yes" if r["rows"] == results[0]["rows"] else "NO"
        before, after = r["load_avg"]
        print(f"{r['mode']:<12}{r['wall']:>8.1f}{r['ppm']:>9.1f}{r['read']:>8.1f}"
              f"{r['dvh']:>8.1f}{r['load']:>8.1f}  {before:>6.2f} / {after:<12.2f}"
              f"  {same}")  # fmt: skip
    if any(r["rows"] != results[0]["rows"] for r in results):
        raise SystemExit("the modes loaded different rows")


if __name__ == "__main__":
    main()
