"""Run ``rtcohort dvh`` in a fresh Python process, then look inside that process.

The imports a command makes show only in a process of its own: the probe (Python
source run after the command, in the same process) prints one JSON line, returned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

_COMMAND = """
import json, sys
from rtcohort.cli import main
sys.argv = ["rtcohort", "dvh", sys.argv[1], "--csv", sys.argv[2]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
"""


def run_dvh_probe(plan: Path, out: Path, probe: str) -> Any:
    """Run ``rtcohort dvh plan --csv out``, then ``probe``; return its JSON line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", _COMMAND + probe, str(plan), str(out)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.splitlines()[-1])
