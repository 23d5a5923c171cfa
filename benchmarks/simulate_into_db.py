"""Rate of ``rtcohort simulate --into-db`` (patients/s) on PostgreSQL and SQLite.

Simulates ``CENTRES x PATIENTS`` once (timed), then loads the cohort into a fresh
migrated database of each backend twice: through the bulk path of ``--into-db``
(:func:`cohort.simulate.bulk_load.load_cohort_bulk`) and through the owners' per-row
writers (:func:`cohort.simulate.run.load_cohort`). Not run by ``make test``::

    python benchmarks/simulate_into_db.py [CENTRES] [PATIENTS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from cohort.simulate.bulk_load import load_cohort_bulk
from cohort.simulate.national import simulate_national
from cohort.simulate.params import SimulationParams
from cohort.simulate.run import load_cohort
from etl.deid.keys import new_key
from omop.database import upgrade
from omop.engine import make_engine, session_factory
from omop.filestore import FileStore
from tests.pgserver import start_postgres


def _load(
    url: str, cohort: object, store_root: Path, loader: object = load_cohort_bulk
) -> tuple[float, object]:
    engine = make_engine(url)
    upgrade(engine)
    keys = {c.code: new_key(c.code) for c in cohort.practices}  # type: ignore[attr-defined]
    started = time.perf_counter()
    counts = loader(  # type: ignore[operator]
        session_factory(engine),
        cohort,
        keys=keys,
        store=FileStore(store_root),  # type: ignore[arg-type]
    )
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, counts


def main() -> None:
    centres = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    patients = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    started = time.perf_counter()
    cohort = simulate_national(
        SimulationParams(centres=centres, patients=patients, seed=1)
    )
    took = time.perf_counter() - started
    n = len(cohort.patients)
    consented = sum(p.consented for p in cohort.patients)
    print(f"simulate {centres} x {patients}: {n} patients ({consented} consented)")
    print(f"  simulation (DVHs, outcomes): {took:6.1f} s  {n / took:7.1f} patients/s")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_postgres()
        try:
            for label, loader in (("bulk", load_cohort_bulk), ("per-row", load_cohort)):
                url = server.create_database(f"sim_{label.replace('-', '_')}")
                elapsed, counts = _load(url, cohort, Path(tmp), loader)
                print(f"  into PostgreSQL ({label:>7}): {elapsed:6.1f} s  "
                      f"{n / elapsed:7.1f} patients/s")  # fmt: skip
        finally:
            server.stop()
        print(f"    {counts}")
        for label, loader in (("bulk", load_cohort_bulk), ("per-row", load_cohort)):
            url = f"sqlite:///{tmp}/sim_{label}.sqlite"
            elapsed, counts = _load(url, cohort, Path(tmp) / "f", loader)
            print(f"  into SQLite     ({label:>7}): {elapsed:6.1f} s  "
                  f"{n / elapsed:7.1f} patients/s")  # fmt: skip


if __name__ == "__main__":
    main()
