"""Mapping rules of one centre re-map only that centre (issue 13 part 8), both backends.

Two centres each import one phantom patient through ``rtcohort import``; rules for
one centre go through ``rtcohort mapping import``; the other centre's structures and
metrics are left exactly as they were, and the import reports each change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from etl.mapping.naming import current_rules, import_rules, parse_rules_csv
from omop.cohort_tables import AuditRecord
from omop.engine import make_engine, session_factory
from omop.ingest_tables import Dvh, DvhMetric, IngestDataset
from rtcohort.cli import app
from tests.etl.ingest_corpus import write_patient

runner = CliRunner()
HEADER = "centre,pattern,kind,tg263_name\n"


@dataclass
class Env:
    root: Path
    engine: Engine


def _ok(args: list[str], code: int = 0) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, (args, result.output)
    return result.output


@pytest.fixture
def env(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "correct horse battery")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    _ok(["db", "upgrade"])
    for centre, patient, seed in (("CA01", "PA-1", 501), ("CB01", "PB-1", 502)):
        key = str(tmp_path / f"{centre}.key")
        _ok(["centre", "add", centre])
        _ok(["keys", "new", "--centre", centre, "--out", key])
        _ok(["consent", "record", patient, "--centre", centre, "--key-file", key,
             "--state", "consented", "--year-of-birth", "1950", "--sex", "F"])  # fmt: skip
        write_patient(tmp_path / "in" / centre, patient, seed)
        out = _ok(["import", str(tmp_path / "in" / centre), "--centre", centre,
                   "--key-file", key])  # fmt: skip
        assert "datasets loaded 1" in out
    engine = make_engine(fresh_url)
    yield Env(tmp_path, engine)
    engine.dispose()


def _structures(env: Env, centre: str) -> dict[str, tuple[int, str | None, int | None]]:
    with session_factory(env.engine)() as s:
        rows = s.execute(
            select(Dvh.roi_name, Dvh.dvh_id, Dvh.tg263_name, Dvh.mapping_rule_id)
            .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
            .where(IngestDataset.centre == centre)
        ).all()
    return {r.roi_name: (r.dvh_id, r.tg263_name, r.mapping_rule_id) for r in rows}


def _metric_rows(env: Env, centre: str) -> set[tuple[int, str, int]]:
    with session_factory(env.engine)() as s:
        rows = s.execute(
            select(DvhMetric.dvh_id, DvhMetric.metric, DvhMetric.measurement_id)
            .join(Dvh, Dvh.dvh_id == DvhMetric.dvh_id)
            .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
            .where(IngestDataset.centre == centre)
        ).all()
    return {tuple(r) for r in rows}


def test_centre_rules_remap_only_that_centre(env: Env) -> None:
    a_before, b_before = _structures(env, "CA01"), _structures(env, "CB01")
    b_metrics = _metric_rows(env, "CB01")
    assert a_before["Lunga vä"][1] == b_before["Lunga vä"][1] == "Lung_L"
    # A global rule stored without re-mapping (as a shipped rule update would be):
    # the heart of both centres would now map elsewhere, but only a global
    # import re-maps every centre.
    with session_factory(env.engine).begin() as s:
        import_rules(
            s, parse_rules_csv(HEADER + ",sydän,exact,Esophagus\n"),
            source="pending.csv", actor="test",
        )  # fmt: skip
        assert current_rules(s).map("Sydän", "CB01").tg263_name == "Esophagus"

    rules = env.root / "ca.csv"
    rules.write_text(HEADER + "CA01,lunga vä,exact,Lung_R\n", encoding="utf-8")
    out = _ok(["mapping", "import", str(rules)])

    a_after, b_after = _structures(env, "CA01"), _structures(env, "CB01")
    assert b_after == b_before  # the other centre: not one row touched
    assert _metric_rows(env, "CB01") == b_metrics
    changed = {n for n in a_after if a_after[n][1] != a_before[n][1]}
    assert changed == {"Lunga vä", "Sydän"}  # its own rule and the pending global
    assert a_after["Lunga vä"][1] == "Lung_R"
    assert a_after["Sydän"][1] == "Esophagus"
    assert f"re-mapped 2 of {len(a_before)} loaded structures" in out
    assert "CA01 'Lunga vä': Lung_L -> Lung_R (1 structure(s))" in out
    assert "CA01 'Sydän': Heart -> Esophagus (1 structure(s))" in out
    assert "CB01" not in out
    rewritten = {r for r in _metric_rows(env, "CA01") if r[0] in
                 {a_after["Lunga vä"][0], a_after["Sydän"][0]}}  # fmt: skip
    assert f"{len(rewritten)} metric(s) recomputed" in out
    with session_factory(env.engine)() as s:
        detail = s.scalars(
            select(AuditRecord.detail)
            .where(AuditRecord.action == "mapping.import")
            .order_by(AuditRecord.seq.desc())
        ).first()
    assert detail is not None and "for CA01;" in detail

    # a global rule file re-maps every centre
    glob = env.root / "global.csv"
    glob.write_text(HEADER + ",sydän,exact,Heart\n", encoding="utf-8")
    out = _ok(["mapping", "import", str(glob)])
    total = len(a_before) + len(b_before)
    assert f"re-mapped 1 of {total} loaded structures" in out  # A's heart only
    assert "CA01 'Sydän': Esophagus -> Heart (1 structure(s))" in out
    names = {n: v[1] for n, v in _structures(env, "CB01").items()}
    assert names == {n: v[1] for n, v in b_before.items()}  # B's heart stayed Heart
    with session_factory(env.engine)() as s:
        n_audits = s.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "mapping.import")
        )
    assert n_audits == 2
