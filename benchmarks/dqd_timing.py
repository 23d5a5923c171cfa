"""Time every ``db quality`` check on one database (per-check wall time).

Not run by ``make test``. The checks run as in ``rtcohort db quality``
(:func:`omop.quality.run.run_checks`: plain counts on shared scans, the others one
by one in a SAVEPOINT each; ``--one-by-one`` runs each alone) under a statement
timeout, so a runaway check is reported as that check's error instead of stalling
the run::

    python benchmarks/dqd_timing.py URL --timeout 20 --out /tmp/dqd.jsonl

One JSON line per check (id, status, seconds or its share of a scan, error) goes
to ``--out``; the slowest checks and the total are printed at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from omop.engine import make_engine, session_factory
from omop.quality import all_checks
from omop.quality.control import load_known_failures
from omop.quality.run import run_check, run_checks
from omop.quality.timeout import statement_timeout


def main(argv: list[str] | None = None) -> None:
    """Run every check once and print the slowest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds")
    parser.add_argument("--out", type=Path, default=Path("dqd_timing.jsonl"))
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--only", default=None, help="substring of check ids")
    parser.add_argument(
        "--one-by-one", action="store_true", help="no shared scans (run_check each)"
    )
    args = parser.parse_args(argv)
    engine = make_engine(args.url)
    rows = []
    started = time.perf_counter()
    with session_factory(engine)() as session, args.out.open("w") as out:
        checks = all_checks(session.get_bind().dialect.name)
        if args.only:
            checks = [c for c in checks if args.only in c.check_id]
        known = load_known_failures(None)
        with statement_timeout(session, args.timeout):
            if args.one_by_one:
                results = []
                for i, check in enumerate(checks):
                    results.append(run_check(session, check, known))
                    if i % 100 == 0:
                        took = time.perf_counter() - started
                        print(f"{i}/{len(checks)} {took:.0f} s", flush=True)
            else:
                results = run_checks(session, checks, known)
        for r in results:
            row = {
                "id": r.check.check_id,
                "status": r.status,
                "seconds": round(r.execution_seconds, 3),
                "violated": r.num_violated_rows,
                "denominator": r.num_denominator_rows,
                "error": r.error,
            }
            rows.append(row)
            out.write(json.dumps(row) + "\n")
        session.rollback()
    total = time.perf_counter() - started
    rows.sort(key=lambda r: -r["seconds"])
    for r in rows[: args.top]:
        print(f"{r['seconds']:8.2f} s  {r['status']:<14} {r['id']}")
    errors = sum(1 for r in rows if r["status"] == "error")
    print(f"{len(rows)} checks, {errors} errors, total {total:.1f} s")
    engine.dispose()


if __name__ == "__main__":
    main()
