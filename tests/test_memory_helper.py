"""The memory-cap tests measure the child's own peak, not the pytest worker's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


def test_child_peak_excludes_the_parent_it_was_started_from() -> None:
    ballast = np.ones(50_000_000)  # 400 MB resident in this (the parent) process
    code = "from tests.memory import peak_rss; print(peak_rss())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[1], timeout=60,
    )  # fmt: skip
    assert float(ballast.sum()) == 50_000_000.0
    assert int(done.stdout) < 200 * 2**20
