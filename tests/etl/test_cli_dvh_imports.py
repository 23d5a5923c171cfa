"""``rtcohort dvh`` imports only what it uses (issue 18: a fast command)."""

from __future__ import annotations

from pathlib import Path

from etl.phantom.spec import spec_from_options
from etl.phantom.write import write_phantom
from tests.etl.dvh_process import run_dvh_probe

HEAVY = ("sqlalchemy", "pandas", "fhir", "streamlit", "lifelines", "sklearn")

_PROBE = """
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(%r))
print(json.dumps(heavy))
"""


def test_dvh_imports_no_database_fhir_or_statistics_package(tmp_path: Path) -> None:
    write_phantom(tmp_path / "plan", spec_from_options("sphere", 10.0), seed=1)
    heavy = run_dvh_probe(tmp_path / "plan", tmp_path / "out.csv", _PROBE % (HEAVY,))
    assert heavy == []
    assert "sphere_10mm" in (tmp_path / "out.csv").read_text()


def test_full_app_still_has_every_command() -> None:
    from rtcohort.cli import app

    names = {c.name for c in app.registered_commands}
    names |= {g.name for g in app.registered_groups}
    assert {"dvh", "phantom", "import", "db", "ntcp", "prom"} <= names
