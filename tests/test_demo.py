"""`rtcohort demo`, small (2 centres x 2 patients), on each backend, run twice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from cohort.simulate import ConsentPlan, simulate_cohort
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


def test_demo_small_twice(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(data))
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "demo-test-password")
    monkeypatch.setenv("RTCOHORT_DEMO_PASSWORD", "demo-accounts-password")
    args = ["demo", "--centres", "2", "--patients", "2", "--seed", "1", "--no-serve"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    engine = make_engine(fresh_url)
    counts = _counts(engine)
    assert counts["person"] == 4

    cohort = simulate_cohort(2, 2, seed=1)
    plans = [p.consent for p in cohort]
    assert plans == [ConsentPlan.CONSENTED, ConsentPlan.DECLINED,
                     ConsentPlan.CONSENTED, ConsentPlan.LATE]  # fmt: skip
    keys = {c: load_key(data / "keys" / f"{c}.key", c) for c in ("HUS", "TAYS")}
    pseudo = [pseudonym(keys[p.centre], p.hospital_id) for p in cohort]
    with session_factory(engine)() as s:
        ids = {
            p: s.scalar(select(Person.person_id).where(Person.person_source_value == p))
            for p in pseudo
        }
        with_dvh = set(s.scalars(select(Dvh.person_id).distinct()))
        held = set(
            s.scalars(
                select(QuarantineItem.person_source_value).where(
                    QuarantineItem.status == "held",
                    QuarantineItem.reason_code == "no-consent",
                )
            )
        )
        # The declined patient's data are refused (neither loaded nor held); the
        # late consenter's load.
        assert ids[pseudo[1]] not in with_dvh
        assert held == set()
        assert {ids[pseudo[0]], ids[pseudo[2]], ids[pseudo[3]]} == with_dvh
        # No hospital identifier reached the database.
        assert not s.scalar(
            select(func.count()).where(Person.person_source_value.like("%-0%"))
        )
        lung = s.scalars(
            select(Dvh).where(
                Dvh.person_id == ids[pseudo[0]], Dvh.tg263_name == "Lung_L"
            )
        ).one()
        stored_mean = evaluate(dvh_from_row(lung), "Mean[Gy]")
        stored_d95 = evaluate(dvh_from_row(lung), "D95%[Gy]")
    # Outcomes: 2 gradings (m3, m6) and 2 questionnaires per consented patient.
    assert counts["survey_conduct"] == 6

    rows = list(csv.DictReader((data / "demo" / "dose_metrics.csv").open()))
    mine = [r for r in rows if r["person_source_value"] == pseudo[0]]
    assert {r["tg263_name"] for r in mine} == {
        "Body", "PTV", "Lung_L", "Lung_R", "Heart", "SpinalCord"
    }  # fmt: skip
    exported = next(r for r in mine if r["tg263_name"] == "Lung_L")
    assert float(exported["D95%[Gy]"]) == pytest.approx(stored_d95, rel=1e-9)
    # ... and the stored mean is the phantom's analytic mean dose.
    folder = data / "demo" / "dicom" / "HUS" / cohort[0].hospital_id
    truth = json.loads((folder / "truth.json").read_text())
    exact = next(r for r in truth["rois"] if r["name"] == "Lung_L")["mean_gy"]
    assert float(exported["Mean[Gy]"]) == pytest.approx(stored_mean, rel=1e-9)
    assert stored_mean == pytest.approx(exact, rel=0.02)

    _assert_demo_accounts(engine)
    assert "clinician-hus" in first.output
    assert "web app on" not in first.output  # --no-serve
    _assert_ohdsi_ready(engine, ids[pseudo[1]], first.output)

    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert _counts(engine) == counts
    assert "data quality: every applicable check passes" in second.output
    engine.dispose()


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
