"""``rtcohort dvh`` imports only what it uses (issue 18: a fast command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from etl.phantom.spec import spec_from_options
from etl.phantom.write import write_phantom

HEAVY = ("sqlalchemy", "pandas", "fhir", "streamlit", "lifelines", "sklearn")

_SCRIPT = """
import json, sys
from rtcohort.cli import main
sys.argv = ["rtcohort", "dvh", sys.argv[1], "--csv", sys.argv[2]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[3:] or %r))
print(json.dumps(heavy))
"""


def test_dvh_imports_no_database_fhir_or_statistics_package(tmp_path: Path) -> None:
    write_phantom(tmp_path / "plan", spec_from_options("sphere", 10.0), seed=1)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    res = subprocess.run(
        [sys.executable, "-c", _SCRIPT % (HEAVY,), str(tmp_path / "plan"),
         str(tmp_path / "out.csv")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[-1]) == []
    assert "sphere_10mm" in (tmp_path / "out.csv").read_text()


def test_full_app_still_has_every_command() -> None:
    from rtcohort.cli import app

    names = {c.name for c in app.registered_commands}
    names |= {g.name for g in app.registered_groups}
    assert {"dvh", "phantom", "import", "db", "ntcp", "prom"} <= names
