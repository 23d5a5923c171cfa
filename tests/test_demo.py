"""`rtcohort demo`, small (2 centres x 2 patients), on each backend: twice; --reset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from cohort.simulate.national import simulate_national
from cohort.simulate.params import SimulationParams
from etl.deid.keys import load_key
from etl.deid.pseudonymise import pseudonym
from etl.dose.metrics import evaluate
from etl.store.dvh_rows import dvh_from_row
from omop.cdm import Measurement, Observation, Person, SurveyConduct
from omop.engine import make_engine, session_factory
from omop.ingest_tables import Dvh, QuarantineItem
from rtcohort.cli import app

_TABLES = (Person, Dvh, Measurement, Observation, SurveyConduct, QuarantineItem)


def _counts(engine: Engine) -> dict[str, int]:
    with session_factory(engine)() as s:
        return {
            t.__tablename__: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in _TABLES
        }


def _assert_demo_accounts(engine: Engine) -> None:
    """The web app's accounts: one per role per centre, a researcher, the admin."""
    from cohort.users import get_user, list_users, verify_password

    with session_factory(engine)() as s:
        users = {u.username: (u.role, u.centres) for u in list_users(s)}
        assert users == {
            "admin": ("admin", ()),
            "researcher": ("researcher", ()),
            "clinician-hus": ("clinician", ("HUS",)),
            "data-manager-hus": ("data_manager", ("HUS",)),
            "viewer-hus": ("viewer", ("HUS",)),
            "clinician-tays": ("clinician", ("TAYS",)),
            "data-manager-tays": ("data_manager", ("TAYS",)),
            "viewer-tays": ("viewer", ("TAYS",)),
        }
        assert verify_password(get_user(s, "clinician-tays"), "demo-accounts-password")
        assert verify_password(get_user(s, "admin"), "demo-test-password")


def _arrived_through_receiver(engine: Engine, data: Path) -> None:
    """Every imported DICOM object is a file the receiver filed from the demo TPS."""
    from omop.ingest_tables import IngestObject
    from rtcohort.demo_steps import DEMO_CALLING_AE

    callers: dict[str, str] = {}
    for index in (data / "demo" / "inbox").glob("*/inbox-index.jsonl"):
        for line in index.read_text().splitlines():
            record = json.loads(line)
            callers[record["sha256"]] = record["caller"]
    with session_factory(engine)() as s:
        imported = set(s.scalars(select(IngestObject.sha256)))
    assert imported
    assert {callers.get(h) for h in imported} == {DEMO_CALLING_AE}


def test_reset_starts_over(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(data))
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "demo-test-password")
    monkeypatch.setenv("RTCOHORT_DEMO_PASSWORD", "demo-accounts-password")
    args = ["demo", "--centres", "1", "--patients", "1", "--seed", "2", "--no-serve"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    engine = make_engine(fresh_url)
    counts = _counts(engine)
    engine.dispose()
    planted = data / "demo" / "sim" / "planted.txt"
    planted.write_text("from the first run")
    third = CliRunner().invoke(app, [*args, "--reset"])
    assert third.exit_code == 0, third.output
    assert "reused" not in third.output
    assert not planted.exists()
    engine = make_engine(fresh_url)
    assert _counts(engine) == counts  # the same cohort, built again from nothing
    _arrived_through_receiver(engine, data)
    engine.dispose()


def test_demo_small_twice(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(data))
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "demo-test-password")
    monkeypatch.setenv("RTCOHORT_DEMO_PASSWORD", "demo-accounts-password")
    args = ["demo", "--centres", "2", "--patients", "2", "--seed", "2", "--no-serve"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    engine = make_engine(fresh_url)
    counts = _counts(engine)

    cohort = simulate_national(SimulationParams(centres=2, patients=2, seed=2))
    assert counts["person"] == len(cohort.patients)
    keys = {c: load_key(data / "keys" / f"{c}.key", c) for c in ("HUS", "TAYS")}
    pseudo = [pseudonym(keys[p.centre], p.hospital_id) for p in cohort.patients]
    consented = [p.consented for p in cohort.patients]
    assert any(consented) and not all(consented)  # both paths are exercised
    with session_factory(engine)() as s:
        ids = {
            p: s.scalar(select(Person.person_id).where(Person.person_source_value == p))
            for p in pseudo
        }
        with_dvh = set(s.scalars(select(Dvh.person_id).distinct()))
        # The declined patients' data are refused (neither loaded nor held).
        assert with_dvh == {ids[p] for p, c in zip(pseudo, consented, strict=True) if c}
        assert not s.scalar(select(func.count()).select_from(QuarantineItem))
        # No hospital identifier reached the database.
        assert not s.scalar(
            select(func.count()).where(Person.person_source_value.like("%-0%"))
        )
        first_in = next(p for p in cohort.patients if p.consented)
        structure = next(st for st in first_in.structures if st.tg263 != "BODY")
        row = s.scalars(
            select(Dvh).where(
                Dvh.person_id == ids[pseudo[cohort.patients.index(first_in)]],
                Dvh.roi_name == structure.roi_name,
            )
        ).one()
        stored_mean = evaluate(dvh_from_row(row), "Mean[Gy]")
    # ... the stored mean is the phantom's analytic mean dose (truth.json).
    folder = data / "demo" / "sim" / first_in.centre / "dicom" / first_in.hospital_id
    truth = json.loads((folder / "truth.json").read_text())
    exact = next(r for r in truth["rois"] if r["name"] == structure.roi_name)
    assert stored_mean == pytest.approx(exact["mean_gy"], rel=0.02, abs=0.1)
    # Outcomes through the FHIR import: every completed questionnaire.
    assert counts["survey_conduct"] == sum(len(p.proms) for p in cohort.patients)
    _arrived_through_receiver(engine, data)

    rows = list(csv.DictReader((data / "demo" / "dose_metrics.csv").open()))
    assert {r["person_source_value"] for r in rows} == {
        p for p, c in zip(pseudo, consented, strict=True) if c
    }

    _assert_demo_accounts(engine)
    assert "clinician-hus" in first.output
    assert "web app on" not in first.output  # --no-serve
    assert "patients/min" in first.output
    _assert_ohdsi_ready(engine, ids[pseudo[consented.index(False)]], first.output)

    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert _counts(engine) == counts
    assert "reused the completed demo database" in second.output
    assert "data quality: every applicable check passes" in second.output
    engine.dispose()


def test_reset_refuses_a_data_dir_that_is_not_a_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "precious.txt").write_text("not a demo")
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(data))
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite'}")
    out = CliRunner().invoke(app, ["demo", "--reset", "--no-serve"])
    assert out.exit_code == 2, out.output
    assert "not a demo data directory" in out.output
    assert (data / "precious.txt").exists()


# (table, date column) of every dated event of the demo.
_EVENTS = (
    ("condition_occurrence", "condition_start_date"),
    ("condition_occurrence", "condition_end_date"),
    ("procedure_occurrence", "procedure_date"),
    ("procedure_occurrence", "procedure_end_date"),
    ("measurement", "measurement_date"),
    ("observation", "observation_date"),
    ("episode", "episode_start_date"),
    ("episode", "episode_end_date"),
    ("image_occurrence", "image_occurrence_date"),
    ("survey_conduct", "survey_start_date"),
    ("visit_occurrence", "visit_start_date"),
    ("death", "death_date"),
)


def _assert_ohdsi_ready(engine: Engine, declined: int, output: str) -> None:
    with engine.connect() as c:
        for table, column in _EVENTS:
            outside = c.execute(
                text(
                    f"SELECT COUNT(*) FROM {table} t WHERE t.{column} IS NOT NULL "
                    "AND NOT EXISTS (SELECT 1 FROM observation_period op WHERE "
                    "op.person_id = t.person_id AND op.observation_period_start_date "
                    f"<= t.{column} AND op.observation_period_end_date >= t.{column})"
                )
            ).scalar()
            assert outside == 0, (table, column)
        # one period per person, the declined person's included (no clinical rows)
        assert (
            c.execute(
                text(
                    "SELECT COUNT(*) FROM person p WHERE (SELECT COUNT(*) FROM "
                    "observation_period op WHERE op.person_id = p.person_id) <> 1"
                )
            ).scalar()
            == 0
        )
        assert (
            c.execute(
                text("SELECT COUNT(*) FROM measurement WHERE person_id = :p"),
                {"p": declined},
            ).scalar()
            == 0
        )
        # every RT course has the disease episode as parent and a cleaned plan label
        courses = c.execute(
            text(
                "SELECT e.episode_source_value, d.episode_concept_id FROM episode e "
                "LEFT JOIN episode d ON d.episode_id = e.episode_parent_id "
                "WHERE e.episode_concept_id = 32940"
            )
        ).all()
        assert courses and all(d == 32533 for _, d in courses)
        assert all(label and "***" not in label for label, _ in courses)
        source = c.execute(
            text("SELECT cdm_source_name, cdm_version FROM cdm_source")
        ).all()
        assert source == [("rtcohort", "v5.4")]
    assert "data quality: every applicable check passes" in output
