"""`rtcohort simulate` on both backends: --into-db, --dicom through the real import."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cohort.simulate.national import simulate_national
from cohort.simulate.params import SimulationParams
from cohort.stage import parse_stage, stages
from etl.deid.keys import load_key
from etl.deid.pseudonymise import pseudonym
from etl.dose.metrics import evaluate
from etl.store.dvh_rows import dvh_from_row
from instruments.store import read_prom_scores, read_toxicity
from omop.cdm import Death, Person, SurveyConduct
from omop.engine import make_engine, session_factory
from omop.ingest_tables import Dvh
from rtcohort.cli import app


@pytest.fixture
def run(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "admin-password")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (args, result.output)
        return result.output

    invoke("db", "upgrade")
    return invoke


def _count(url: str, model: type) -> int:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        engine.dispose()


def test_into_db_small_cohort_twice(run, fresh_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    truth_file = tmp_path / "truth.json"
    args = ["simulate", "--centres", "2", "--patients", "20", "--seed", "1",
            "--into-db", "--truth", str(truth_file)]  # fmt: skip
    out = run(*args)
    assert "patients/s" in out
    truth = json.loads(truth_file.read_text())
    expected = simulate_national(SimulationParams(centres=2, patients=20, seed=1))
    assert len(truth["patients"]) == len(expected.patients)
    assert _count(fresh_url, Person) == len(expected.patients)
    keys = {
        c: load_key(tmp_path / "data" / "simulate" / "keys" / f"{c}.key", c)
        for c in ("HUS", "TAYS")
    }
    engine = make_engine(fresh_url)
    with session_factory(engine)() as s:
        for patient in expected.patients:
            pid = s.scalar(
                select(Person.person_id).where(
                    Person.person_source_value
                    == pseudonym(keys[patient.centre], patient.hospital_id)
                )
            )
            assert pid is not None
            # the stage is the truth's (its group), recorded with consent only
            truth_stage = truth["patients"][expected.patients.index(patient)]["stage"]
            assert truth_stage == patient.stage
            assert stages(s, [pid]) == (
                {pid: parse_stage(patient.stage)[0]}
                if patient.consented and patient.stage
                else {}
            )
            rows = list(s.scalars(select(Dvh).where(Dvh.person_id == pid)))
            if not patient.consented:
                assert rows == []
                continue
            assert len(rows) == len(patient.structures)
            # the stored DVH is the simulated truth; metrics through the real engine
            by_name = {r.roi_name: r for r in rows}
            for structure in patient.structures:
                stored = dvh_from_row(by_name[structure.roi_name])
                assert evaluate(stored, "Mean[Gy]") == pytest.approx(
                    structure.dvh.mean_gy, rel=1e-3, abs=0.06
                )
            tox = read_toxicity(s, [pid])
            assert len(tox) == sum(len(g) for g in patient.grades.values())
            assert len(read_prom_scores(s, [pid])) == len(patient.proms)
            assert (s.get(Death, pid) is not None) == (
                patient.died_on is not None and patient.withdrawn_on is None
            )
    engine.dispose()
    persons, surveys = _count(fresh_url, Person), _count(fresh_url, SurveyConduct)
    again = run(*args)
    assert f"0 persons ({persons} already there)" in again
    assert (_count(fresh_url, Person), _count(fresh_url, SurveyConduct)) == (
        persons,
        surveys,
    )


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--centres", "0", "--centres"),
        ("--completion", "1.5", "--completion"),
        ("--fractionation", "prostate=60/0", "--fractionation"),
        ("--years", "-2", "--years"),
    ],
)
def test_bad_input_writes_nothing(  # type: ignore[no-untyped-def]  # noqa: PLR0917
    run, fresh_url: str, tmp_path: Path, option, value, named
) -> None:
    truth_file = tmp_path / "t.json"
    out = run("simulate", option, value, "--into-db", "--dicom", str(tmp_path / "d"),
              "--truth", str(truth_file), code=2)  # fmt: skip
    assert named in out
    assert not truth_file.exists() and not (tmp_path / "d").exists()
    assert _count(fresh_url, Person) == 0


def test_dicom_files_import_through_the_real_paths(
    run, fresh_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    out_dir = tmp_path / "sim"
    run("simulate", "--centres", "1", "--patients", "4", "--seed", "2",
        "--dicom", str(out_dir))  # fmt: skip
    truth = json.loads((out_dir / "truth.json").read_text())
    centre = truth["centres"][0]["code"]
    key_file = tmp_path / "c.key"
    run("centre", "add", centre)
    run("keys", "new", "--centre", centre, "--out", str(key_file))
    k = ["--centre", centre, "--key-file", str(key_file)]
    with (out_dir / centre / "consent.csv").open() as fh:
        consent = list(csv.DictReader(fh))
    for row in consent:
        extra = ["--year-of-birth", row["year_of_birth"], "--sex", row["sex"],
                 "--site", row["site"]]  # fmt: skip
        run("consent", "record", row["hospital_id"], *k, "--state", "approached",
            "--date", row["date"], *extra)  # fmt: skip
        stage = ["--stage", row["stage"]] if row["stage"] else []
        run("consent", "record", row["hospital_id"], *k, "--state", row["state"],
            "--date", row["date"], *stage)  # fmt: skip
    run("mapping", "import", str(out_dir / "mapping_rules.csv"))
    run("import", str(out_dir / centre / "dicom"), *k)
    consented = [r for r in consent if r["state"] == "consented"]
    n_structures = sum(
        len(json.loads((out_dir / centre / "dicom" / r["hospital_id"] / "truth.json")
                       .read_text())["rois"])
        for r in consented
    )  # fmt: skip
    assert _count(fresh_url, Dvh) == n_structures
    patients = {p["hospital_id"]: p for p in truth["patients"]}
    if any(patients[r["hospital_id"]]["proms_completed"] for r in consented):
        run("prom", "import", str(out_dir / centre / "proms.json"), *k)
    run("toxicity", "import", str(out_dir / centre / "toxicity.json"), *k)
    expected_proms = sum(
        patients[r["hospital_id"]]["proms_completed"] for r in consented
    )
    assert _count(fresh_url, SurveyConduct) == expected_proms
    key = load_key(key_file, centre)
    engine = make_engine(fresh_url)
    with session_factory(engine)() as s:
        for r in consent:
            pid = s.scalar(
                select(Person.person_id).where(
                    Person.person_source_value == pseudonym(key, r["hospital_id"])
                )
            )
            given = patients[r["hospital_id"]]["stage"]
            want = {pid: parse_stage(given)[0]} if r["state"] == "consented" else {}
            assert pid is not None and stages(s, [pid]) == want
    engine.dispose()
