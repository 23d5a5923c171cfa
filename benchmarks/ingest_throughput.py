"""Throughput of `rtcohort import` into PostgreSQL; a re-import that changes nothing.

100 synthetic patients from the phantom writer's multi-structure spec
(``etl/data/phantom_multi15.json``: CT of 100 slices, RTSTRUCT with 15 structures,
RTPLAN, RTDOSE) are imported with 2 workers into a throw-away PostgreSQL server
(``tests/pgserver.py``), each patient's consent recorded first (the real consent check
is wired in). Printed: patients per minute, where the time goes (reading =
integrity check + pseudonymisation + file store + header index + parsing the RT objects;
DVH = the DVH engine; loading = database writes), then the seconds of a second import
of the same files and, per table, row count and checksum before and after it.

Run: ``.venv/bin/python benchmarks/ingest_throughput.py [--patients 100] [--workers 2]``
(the phantoms are cached under ``benchmarks/_work/ingest_phantoms``).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLES = (
    "person", "care_site", "episode", "episode_event", "procedure_occurrence",
    "measurement", "image_occurrence", "image_feature", "dvh", "dvh_metric",
    "ingest_dataset", "ingest_object", "stored_file", "stored_file_owner",
    "quarantine_item", "mapping_rule", "observation_period", "enrolment",
)  # fmt: skip


def _write(args: tuple[str, str, int]) -> str:
    from etl.phantom.write import write_phantom

    folder, patient_id, seed = args
    spec = json.loads((ROOT / "etl" / "data" / "phantom_multi15.json").read_text())
    write_phantom(folder, spec, patient_id=patient_id, seed=seed)
    (Path(folder) / "truth.json").unlink()
    return folder


def phantoms(n: int, workers: int) -> list[Path]:
    """Write (or reuse) n patients; return their folders."""
    spec = (ROOT / "etl" / "data" / "phantom_multi15.json").read_bytes()
    tag = hashlib.sha256(spec).hexdigest()[:12]
    root = ROOT / "benchmarks" / "_work" / f"ingest_phantoms_{tag}"
    todo = [
        (str(root / f"p{i:03d}"), f"BENCH{i:03d}", 1000 + i)
        for i in range(n)
        if not (root / f"p{i:03d}" / "RTDOSE.dcm").exists()
    ]
    if todo:
        print(f"writing {len(todo)} phantom patients (once) ...", flush=True)
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write, todo))
    return [root / f"p{i:03d}" for i in range(n)]


def checksums(engine: object) -> dict[str, tuple[int, str]]:
    """Row count and SHA-256 of the ordered contents of each table."""
    from sqlalchemy import MetaData, Table, select

    meta = MetaData()
    out: dict[str, tuple[int, str]] = {}
    with engine.connect() as c:  # type: ignore[attr-defined]
        for name in TABLES:
            table = Table(name, meta, autoload_with=c)
            digest = hashlib.sha256()
            count = 0
            for row in c.execute(select(table).order_by(*table.columns)):
                digest.update(repr(tuple(row)).encode())
                count += 1
            out[name] = (count, digest.hexdigest()[:16])
    return out


def _consent_patients(session: Any, key: Any, n: int) -> None:
    """Add the BENCH centre and consent its n patients."""
    from cohort.centres import add_centre
    from cohort.consent import record_consent
    from etl.deid.pseudonymise import pseudonym

    centre = add_centre(session, "BENCH")
    for i in range(n):
        record_consent(
            session,
            centre=centre,
            pseudonym=pseudonym(key, f"BENCH{i:03d}"),
            state="consented",
            event_date=datetime.date(2023, 1, 1),
            actor="benchmark",
            year_of_birth=1950 + i % 30,
            sex="F" if i % 2 else "M",
        )


def _print_report(  # noqa: PLR0917
    args: argparse.Namespace,
    port: int,
    n_files: int,
    first_run: tuple[Any, float],
    second_run: tuple[Any, float],
    before: dict[str, tuple[int, str]],
    after: dict[str, tuple[int, str]],
) -> None:
    """Print the figures of the import and the re-import, then the table checksums."""
    (first, wall), (second, rewall) = first_run, second_run
    busy = first.read_s + first.dvh_s + first.load_s
    same = sum(before[t] == after[t] for t in TABLES)
    print()
    print(f"rtcohort import: {args.patients} patients, {n_files} files, "
          f"{args.workers} workers, PostgreSQL {port}")  # fmt: skip
    print(f"{'figure':<44}{'value':>14}")
    rows = [
        ("datasets loaded", f"{first.loaded}"),
        ("quarantined files", f"{sum(first.quarantined.values())}"),
        ("wall time (s)", f"{wall:.1f}"),
        ("patients per minute", f"{args.patients / wall * 60:.1f}"),
        ("reading, worker+main seconds", f"{first.read_s:.1f}"),
        ("DVH, worker seconds", f"{first.dvh_s:.1f}"),
        ("loading, main seconds", f"{first.load_s:.1f}"),
        ("share reading (% of busy time)", f"{100 * first.read_s / busy:.1f}"),
        ("share DVH (% of busy time)", f"{100 * first.dvh_s / busy:.1f}"),
        ("share loading (% of busy time)", f"{100 * first.load_s / busy:.1f}"),
        ("re-import wall time (s)", f"{rewall:.1f}"),
        ("re-import loaded / unchanged", f"{second.loaded} / {second.unchanged}"),
        ("tables unchanged by the re-import", f"{same}/{len(TABLES)}"),
    ]  # fmt: skip
    for label, value in rows:
        print(f"{label:<44}{value:>14}")
    print()
    head = f"{'table':<22}{'rows':>9}  {'checksum before':<17} "
    print(head + f"{'checksum after':<17} same")
    for t in TABLES:
        (n0, h0), (n1, h1) = before[t], after[t]
        flag = "yes" if (n0, h0) == (n1, h1) else "NO"
        print(f"{t:<22}{n1:>9}  {h0:<17} {h1:<17} {flag}")
    if first.quarantined:
        print("quarantined:", dict(first.quarantined))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from etl.deid.keys import new_key
    from etl.ingest.run import ImportOptions, run_import
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory
    from omop.filestore import FileStore
    from rtcohort.wiring import ingest_consent_check
    from tests.pgserver import start_postgres

    folders = phantoms(args.patients, args.workers)
    server = start_postgres()
    data = Path(tempfile.mkdtemp(prefix="ingest_data_"))
    try:
        engine = make_engine(server.create_database("bench_ingest"))
        upgrade(engine)
        factory = session_factory(engine)
        key = new_key("BENCH")
        with factory.begin() as session:
            _consent_patients(session, key, args.patients)
        opts = ImportOptions(
            centre="BENCH",
            key=key,
            store=FileStore(data / "files"),
            quarantine_dir=data / "quarantine",
            consent=ingest_consent_check(),
            workers=args.workers,
        )
        n_files = sum(1 for f in folders for _ in f.glob("*.dcm"))
        t0 = time.perf_counter()
        first = run_import(factory, folders, opts)
        wall = time.perf_counter() - t0
        before = checksums(engine)
        t1 = time.perf_counter()
        second = run_import(factory, folders, opts)
        rewall = time.perf_counter() - t1
        after = checksums(engine)

        _print_report(
            args, server.port, n_files, (first, wall), (second, rewall), before, after
        )
        if before != after:
            raise SystemExit("re-import changed rows")
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
