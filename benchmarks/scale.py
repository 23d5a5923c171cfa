"""Scale benchmark: a national cohort on PostgreSQL, its build and its read queries.

Not run by ``make test``. The server keeps its data in ``/work/scale-pg`` (so the
database can be queried after the run; ``benchmarks/_scale_build.py``)::

    python benchmarks/scale.py start                 # (re)start the server, print URL
    python benchmarks/scale.py build --patients 2400 --centres 12 --years 15
    python benchmarks/scale.py queries --db scale_12x2400
    python benchmarks/scale.py extrapolate --db scale_12x2400 --db2 scale_12x8300
    python benchmarks/scale.py stop

``build`` simulates the cohort (``rtcohort simulate``'s simulator), loads it with the
bulk ``--into-db`` path (:func:`cohort.simulate.bulk_load.load_cohort_bulk`) into a
fresh database ``scale_{centres}x{patients}``, then reports build time, rows/s, the
ratio to a raw ``COPY`` of the same rows and the database size. ``queries`` times
(median and p95 of 20 runs) every query of :data:`VIEW_QUERIES`, the NTCP dataset
extraction and ``db quality`` (``--only LABEL ...`` re-times some and keeps the others'
figures). ``extrapolate`` scales two measured sizes to ``--to`` patients
(:mod:`benchmarks._scale_extrapolate` states the method). Figures go to
``/work/scale-pg/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.orm import Session

from benchmarks import _scale_build as sb
from benchmarks._scale_views import VIEW_QUERIES

__all__ = ["VIEW_QUERIES", "main"]

RUNS = 20


def _keys(args: argparse.Namespace, name: str, codes: list[str]) -> dict[str, Any]:
    """The centres' keys, kept beside the data so that a re-run resumes."""
    from etl.deid.keys import load_key, new_key, write_key
    from omop.private_files import make_private_dirs

    folder = args.pgdata / "keys" / name
    make_private_dirs(folder)
    keys = {}
    for code in codes:
        path = folder / f"{code}.key"
        if not path.exists():
            write_key(new_key(code), path)
        keys[code] = load_key(path, code)
    return keys


def _worker(job: tuple[argparse.Namespace, str, str, list[str]]) -> dict[str, Any]:
    """Simulate and load the patients of some centres (one process)."""
    from cohort.simulate.bulk_load import load_cohort_bulk
    from cohort.simulate.national import simulate_national
    from cohort.simulate.params import SimulationParams
    from omop.engine import make_engine, session_factory
    from omop.filestore import FileStore

    args, name, url, codes = job
    params = SimulationParams(
        centres=args.centres, patients=args.patients, years=args.years, seed=args.seed
    )
    label = ",".join(codes)
    started = time.perf_counter()
    last = [0.0]

    def tick(step: str, done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 60 or done == total:
            last[0] = time.perf_counter()
            print(f"  [{label}] {step}: {done}/{total} ({last[0] - started:.0f} s)",
                  flush=True)  # fmt: skip

    cohort = simulate_national(
        params, progress=lambda d, t: tick("simulate", d, t), only_centres=codes
    )
    simulated = time.perf_counter() - started
    engine = make_engine(url)
    began = time.perf_counter()
    counts = load_cohort_bulk(
        session_factory(engine), cohort, keys=_keys(args, name, codes),
        store=FileStore(args.pgdata / "files" / name), batch=args.batch,
        progress=tick,
    )  # fmt: skip
    engine.dispose()
    return {
        "simulate_s": simulated, "load_s": time.perf_counter() - began,
        "counts": vars(counts), "patients": len(cohort.patients),
        "consented": sum(p.consented for p in cohort.patients),
    }  # fmt: skip


def _build(args: argparse.Namespace, srv: Any) -> None:
    import multiprocessing

    import numpy as np

    from cohort.simulate.load import centre_for
    from cohort.simulate.national import draw_practices
    from cohort.simulate.params import SimulationParams
    from etl.mapping.naming import ensure_default_rules
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory

    name = args.db or f"scale_{args.centres}x{args.patients}"
    free = _free_gb(args.pgdata)
    print(f"free disk at {args.pgdata}: {free:.1f} GB")
    if free < args.min_free_gb:
        raise SystemExit(f"stopping: less than {args.min_free_gb} GB free")
    url = sb.database(srv, name, fresh=not args.resume)
    engine = make_engine(url)
    upgrade(engine)
    params = SimulationParams(
        centres=args.centres, patients=args.patients, years=args.years, seed=args.seed
    )
    codes = [
        p.code for p in draw_practices(params, np.random.default_rng([args.seed, 0]))
    ]
    with session_factory(engine).begin() as session:  # before the workers race
        ensure_default_rules(session)
        for code in codes:
            centre_for(session, code)
    before = sum(sb.table_counts(engine).values()) if args.resume else 0
    shards = [codes[k :: args.workers] for k in range(args.workers)]
    jobs = [(args, name, url, shard) for shard in shards if shard]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        parts = pool.map(_worker, jobs)
    wall = time.perf_counter() - started
    loaded = max(p["load_s"] for p in parts)
    simulated = max(p["simulate_s"] for p in parts)
    counts = {k: sum(p["counts"][k] for p in parts) for k in parts[0]["counts"]}
    tables = sb.table_counts(engine)
    rows = sum(tables.values()) - before  # written by this run (--resume: the rest)
    print(f"simulated in {simulated:.0f} s, loaded {counts} in {loaded:.0f} s "
          f"({args.workers} workers; wall {wall:.0f} s): {rows:,} rows, "
          f"{rows / loaded:,.0f} rows/s")  # fmt: skip
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    size = sb.database_bytes(engine)
    big = [t for t, n in tables.items() if n >= 1000]
    raw = sb.raw_copy_seconds(engine, big)
    share = rows / sum(tables.values())  # --resume: the part this run wrote
    print(f"raw COPY of all rows: {raw:.1f} s "
          f"(build/raw = {loaded / (raw * share):.1f})")  # fmt: skip
    print(f"database size: {size / 2**30:.2f} GiB")
    patients = sum(p["patients"] for p in parts)
    sb.save(
        args.pgdata / "results.json",
        {f"{name}/build": {
            "patients": patients, "consented": sum(p["consented"] for p in parts),
            "workers": args.workers, "simulate_s": simulated, "load_s": loaded,
            "wall_s": wall, "rows": rows, "rows_per_s": rows / loaded,
            "patients_per_s": counts["persons"] / loaded, "raw_copy_s": raw,
            "ratio_to_raw_copy": loaded / (raw * share),
            "database_bytes": size, "resumed": args.resume,
            "tables": tables, "counts": counts, "url": url,
        }},
    )  # fmt: skip
    engine.dispose()


def _free_gb(path: Path) -> float:
    import shutil

    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free / 2**30


def _time(fn: Callable[[], object], runs: int = RUNS) -> dict[str, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"median_ms": statistics.median(times), "p95_ms": p95, "runs": runs}


def _queries(args: argparse.Namespace, srv: Any) -> None:
    from benchmarks._scale_views import heavy_queries
    from omop.engine import make_engine, session_factory
    from rtcohort.wiring import after_upgrade

    name = args.db
    os.environ.setdefault("RTCOHORT_DATA_DIR", str(args.pgdata / "rtcohort-data"))
    engine = make_engine(srv.url(name))
    after_upgrade(engine)  # audit key and binding: the NTCP extraction audits
    # As the web app's server does after its imports (dashboards.launch): the
    # start-up objects are out of the collector's reach, so a full collection
    # during a read walks only what the reads made.
    from dashboards.launch import freeze_startup_objects, preload_pages

    preload_pages()
    freeze_startup_objects()
    factory = session_factory(engine)
    figures: dict[str, Any] = {}
    named: dict[str, Callable[[Session], object]] = dict(VIEW_QUERIES)
    named.update(heavy_queries())
    for label, query in named.items():
        if args.only and label not in args.only:
            continue
        runs = RUNS if label in VIEW_QUERIES else args.heavy_runs
        with factory() as session:
            query(session)  # warm the cache once, as a dashboard would
            figures[label] = _time(lambda q=query, s=session: q(s), runs)
            session.rollback()
        f = figures[label]
        print(f"{label:<28} median {f['median_ms']:9.1f} ms  p95 {f['p95_ms']:9.1f} ms")
    path = args.pgdata / "results.json"
    kept = (
        json.loads(path.read_text()).get(f"{name}/queries", {}) if path.exists() else {}
    )
    sb.save(path, {f"{name}/queries": kept | figures})  # --only keeps the others
    engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """Run ``start``, ``stop``, ``build``, ``queries`` or ``extrapolate``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", choices=["start", "stop", "build", "queries", "extrapolate"]
    )
    parser.add_argument("--pgdata", type=Path, default=Path("/work/scale-pg"))
    parser.add_argument("--port", type=int, default=sb.PORT)
    parser.add_argument("--patients", type=int, default=2400)
    parser.add_argument("--centres", type=int, default=12)
    parser.add_argument("--years", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", default=None)
    parser.add_argument("--resume", action="store_true", help="keep the database")
    parser.add_argument("--min-free-gb", type=float, default=20.0)
    parser.add_argument("--heavy-runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--db2", default=None, help="extrapolate: the larger build")
    parser.add_argument("--to", type=int, default=300_000, help="extrapolate to")
    args = parser.parse_args(argv)
    srv = sb.server(args.pgdata, args.port)
    if args.command == "start":
        print(srv.url())
    elif args.command == "stop":
        sb.stop(srv)
    elif args.command == "build":
        _build(args, srv)
    elif args.command == "extrapolate":
        from benchmarks._scale_extrapolate import extrapolate, format_table

        results = json.loads((args.pgdata / "results.json").read_text())
        figures = extrapolate(results, args.db, args.db2, args.to)
        sb.save(args.pgdata / "results.json", {f"extrapolated/{args.to}": figures})
        print(format_table(figures))
    else:
        if not args.db:
            args.db = f"scale_{args.centres}x{args.patients}"
        _queries(args, srv)


if __name__ == "__main__":
    main()
