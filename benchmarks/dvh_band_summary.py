"""Time the population DVH band: stored samples (``dvh_sampled``) vs read-time sampling.

Usage::

    python benchmarks/dvh_band_summary.py URL [--site lung] [--organ Lungs] [--runs 10]

With ``RTCOHORT_DATA_DIR`` of the database (its audit key), on a migrated database
with DVHs (e.g. ``rtcohort simulate --into-db``), calls
:func:`cohort.benchmark.queries_dose.dvh_band` as the Dose page does (the admin's
scope: every centre, the others anonymised and suppressed), physical and EQD2, once
as it is (the samples stored with the DVHs) and once with every curve sampled at read
time (the former path: :func:`cohort.benchmark.dose_curves._read_time_samples`), and
prints the median of ``--runs`` calls of each and whether the two bands are equal.
Each call's audit record is rolled back.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import pandas as pd  # type: ignore[import-untyped]


def _median_ms(call: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = call()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), out


def main() -> None:
    """Print the timings (median ms) of both paths, physical and EQD2."""
    from cohort.benchmark import dose_curves, queries_dose
    from cohort.permissions import Action, scope_for
    from cohort.users import ensure_admin, get_user
    from omop.engine import make_engine, session_factory
    from omop.ingest_tables import Dvh
    from rtcohort.wiring import configure_audit

    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--site", default="lung")
    parser.add_argument("--organ", default="Lungs")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    engine = make_engine(args.url)
    configure_audit(engine)  # the audit key of RTCOHORT_DATA_DIR (rtcohort db upgrade)
    with session_factory(engine)() as session:
        ensure_admin(session, "band-benchmark-password")
        scope = scope_for(session, get_user(session, "admin"), Action.READ_AGGREGATES)
        curves = session.query(Dvh).filter(Dvh.tg263_name == args.organ).count()
        print(f"{args.organ} DVH rows: {curves}")
        stored = queries_dose.band_curves
        for eqd2 in (False, True):

            def band(eqd2: bool = eqd2) -> Any:
                return queries_dose.dvh_band(
                    session, scope, site=args.site, structure=args.organ, eqd2=eqd2
                )

            new_ms, new = _median_ms(band, args.runs)
            queries_dose.band_curves = dose_curves._read_time_samples
            try:
                old_ms, old = _median_ms(band, args.runs)
            finally:
                queries_dose.band_curves = stored
            pd.testing.assert_frame_equal(new, old, check_exact=False, rtol=1e-9)
            label = "EQD2" if eqd2 else "physical"
            print(
                f"{label:8} read-time sampling {old_ms:7.1f} ms, stored samples "
                f"{new_ms:7.1f} ms (median of {args.runs}); {len(new)} rows, equal"
            )
        session.rollback()
    engine.dispose()


if __name__ == "__main__":
    main()
