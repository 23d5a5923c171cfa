"""Time ``rtcohort db upgrade`` on an empty SQLite database (migrate + seed).

Reports the whole command as a fresh process (what a user waits for) and the in-process
``omop.database.upgrade`` call. Run: python benchmarks/db_upgrade.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omop.database import upgrade
from omop.engine import make_engine

RUNS = 5


def main() -> None:
    process, inproc = [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "RTCOHORT_DATA_DIR": tmp}
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "rtcohort.cli", "db", "upgrade"],
                env=env,
                check=True,
                capture_output=True,
            )
            process.append(time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/x.sqlite")
            started = time.perf_counter()
            upgrade(engine)
            inproc.append(time.perf_counter() - started)
            engine.dispose()
    print(f"rtcohort db upgrade, empty SQLite, {RUNS} runs")
    print(
        f"  whole process : median {statistics.median(process):.2f} s "
        f"(min {min(process):.2f}, max {max(process):.2f}); goal < 10 s"
    )
    print(f"  in-process    : median {statistics.median(inproc):.2f} s")


if __name__ == "__main__":
    main()
