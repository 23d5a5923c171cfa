"""The ingest commands end to end through `rtcohort`, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from omop.cohort_tables import AuditRecord
from rtcohort.cli import app

runner = CliRunner()


@pytest.fixture
def env(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "correct horse battery")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    for args in (["db", "upgrade"], ["centre", "add", "CLI01"],
                 ["keys", "new", "--centre", "CLI01", "--out", str(tmp_path / "k.key")]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return tmp_path


def _ok(args: list[str], code: int = 0) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, (args, result.output)
    return result.output


def _consent(env: Path, patient: str) -> str:
    return _ok(["consent", "record", patient, "--centre", "CLI01", "--key-file", str(env / "k.key"),
         "--state", "consented", "--year-of-birth", "1950", "--sex", "F"])  # fmt: skip


def test_import_quarantine_mapping_export_report(env: Path) -> None:
    from tests.etl.ingest_corpus import write_patient

    key = str(env / "k.key")
    write_patient(env / "in" / "a", "CLI-A", 401)
    write_patient(env / "in" / "b", "CLI-B", 402)
    (env / "in" / "junk.dcm").write_bytes(b"not dicom")
    _consent(env, "CLI-A")

    out = _ok(
        ["import", str(env / "in"), "--centre", "CLI01", "--key-file", key, "--strict"],
        1,
    )
    assert "datasets loaded 1" in out
    assert "quarantined no-consent:" in out and "quarantined not-dicom: 1" in out
    assert "structures unmapped 0" in out

    items = json.loads(_ok(["quarantine", "list", "--json"]))
    assert items and all(
        set(i) >= {"id", "path", "reason_code", "reason", "received_at"} for i in items
    )
    held = [i for i in items if i["reason_code"] == "no-consent"]
    assert held

    # recording consent loads the held dataset at once; a retry then changes nothing
    assert "1 held dataset(s) loaded" in _consent(env, "CLI-B")
    left = json.loads(_ok(["quarantine", "list", "--json"]))
    assert {i["reason_code"] for i in left} == {"not-dicom"}
    out = _ok(["quarantine", "retry", str(held[0]["id"])])
    assert "datasets loaded 0, unchanged 1" in out

    again = _ok(["import", str(env / "in"), "--centre", "CLI01", "--key-file", key])
    assert "datasets loaded 0, unchanged 2" in again

    assert "Heart" in _ok(["mapping", "test", "Sydän", "--centre", "CLI01"])
    assert "unmapped" in _ok(["mapping", "test", "Hrt"], 1)
    rules = env / "rules.csv"
    rules.write_text(
        "centre,pattern,kind,tg263_name\nCLI01,body,exact,External\n", encoding="utf-8"
    )
    out = _ok(["mapping", "import", str(rules)])
    assert "re-mapped 2 of 8" in out
    assert _ok(["mapping", "unmapped"]).startswith("centre\troi_name")

    target = env / "metrics.csv"
    _ok(["export", "dose-metrics", "--out", str(target), "--structure", "Heart",
         "--metric", "D95%[Gy]", "--metric", "V20Gy[%]"])  # fmt: skip
    with target.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    assert list(rows[0]) == [
        "person_source_value", "centre", "episode_id", "dose_sop_instance_uid",
        "tg263_name", "roi_name", "volume_cc", "D95%[Gy]", "V20Gy[%]",
    ]  # fmt: skip
    assert {r["tg263_name"] for r in rows} == {"Heart"}

    report = _ok(["report", "structures", "--required", "Heart,Lung_L,Lung_R,External"])
    lines = report.strip().splitlines()
    assert lines[0].split() == [
        "person_source_value",
        "Heart",
        "Lung_L",
        "Lung_R",
        "External",
    ]
    assert all(line.split()[1:] == ["1", "1", "0", "1"] for line in lines[1:])
    assert len(lines) == 3

    from omop.engine import make_engine
    from rtcohort.settings import get_settings

    engine = make_engine(get_settings().resolved_database_url())
    with engine.connect() as c:
        actions = c.execute(
            select(AuditRecord.action, func.count()).group_by(AuditRecord.action)
        ).all()
    engine.dispose()
    assert dict(actions).get("export dose-metrics") == 1
    assert dict(actions).get("report structures") == 1


def test_bad_input_is_one_line(env: Path) -> None:
    missing = runner.invoke(app, ["import", str(env / "nope"), "--centre", "CLI01",
                                  "--key-file", str(env / "k.key")])  # fmt: skip
    assert missing.exit_code == 2
    assert missing.output.strip().count("\n") == 0 and "no such file" in missing.output
    bad_key = env / "bad.key"
    bad_key.write_text("{}", encoding="utf-8")
    (env / "in").mkdir()
    wrong = runner.invoke(
        app,
        ["import", str(env / "in"), "--centre", "CLI01", "--key-file", str(bad_key)],
    )
    assert wrong.exit_code == 2 and "Traceback" not in wrong.output
    metric = runner.invoke(
        app,
        ["export", "dose-metrics", "--out", str(env / "x.csv"), "--metric", "D95[Gy]"],
    )
    assert metric.exit_code == 2 and "D95[Gy]" in metric.output
    rules = env / "bad.csv"
    rules.write_text(
        "centre,pattern,kind,tg263_name\n,x,exact,Hearts\n", encoding="utf-8"
    )
    bad_rules = runner.invoke(app, ["mapping", "import", str(rules)])
    assert bad_rules.exit_code == 2 and "line 2" in bad_rules.output


def test_watch_imports_the_inbox(env: Path) -> None:
    from tests.etl.ingest_corpus import write_patient

    write_patient(env / "inbox" / "s1", "CLI-W", 403)
    _consent(env, "CLI-W")
    out = _ok(["import", "--watch", str(env / "inbox"), "--centre", "CLI01",
               "--key-file", str(env / "k.key"), "--cycles", "2", "--interval-s", "0"])  # fmt: skip
    assert "datasets loaded 1" in out and "datasets loaded 0, unchanged 1" in out


def test_consent_after_import_loads_held_data_and_project_export(env: Path) -> None:
    from omop.engine import make_engine
    from rtcohort.settings import get_settings
    from rtcohort.wiring import after_consent
    from tests.etl.ingest_corpus import write_patient

    key = str(env / "k.key")
    write_patient(env / "in" / "c", "CLI-C", 404)
    _ok(["project", "create", "P1", "--name", "Heart study", "--protocol", "v1",
         "--controller", "CLI01", "--expires", "2099-12-31"])  # fmt: skip
    out = _ok(["import", str(env / "in"), "--centre", "CLI01", "--key-file", key,
               "--project", "P1"])  # fmt: skip
    assert "datasets loaded 0" in out and "quarantined no-consent" in out
    # recording consent loads the held dataset at once
    assert "1 held dataset(s) loaded" in _consent(env, "CLI-C")
    assert json.loads(_ok(["quarantine", "list", "--json"])) == []
    engine = make_engine(get_settings().resolved_database_url())
    try:
        assert after_consent(engine, "CLI01").loaded == 0  # nothing left to load
    finally:
        engine.dispose()
    # attach via the project option on a later import of new data goes through cohort
    write_patient(env / "in2" / "d", "CLI-D", 405)
    _consent(env, "CLI-D")
    out = _ok(["import", str(env / "in2"), "--centre", "CLI01", "--key-file", key,
               "--project", "P1"])  # fmt: skip
    assert "attached to P1: 1" in out
    target = env / "p1.csv"
    _ok(["export", "dose-metrics", "--out", str(target), "--project", "P1",
         "--metric", "Mean[Gy]"])  # fmt: skip
    with target.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len({r["person_source_value"] for r in rows}) == 1
