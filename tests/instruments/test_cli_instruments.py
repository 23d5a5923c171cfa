"""`rtcohort prom score|questionnaire` and `rtcohort toxicity terms`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from instruments.qlq_c30 import score_qlq_c30
from rtcohort.cli import app

ORDER = [
    "QL2",
    "PF2",
    "RF2",
    "EF",
    "CF",
    "SF",
    "FA",
    "NV",
    "PA",
    "DY",
    "SL",
    "AP",
    "CO",
    "DI",
    "FI",
    "SUMMARY",
]

runner = CliRunner()
ITEMS = [f"q{n}" for n in range(1, 31)]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    header = ["patient", *ITEMS, "visit"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        for row in rows:
            writer.writerow({h: row.get(h, "") for h in header})
    return path


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def answers_csv(tmp_path: Path) -> tuple[Path, list[dict[int, float | None]]]:
    rng = np.random.default_rng(3)
    rows, sets = [], []
    for i in range(20):
        answers: dict[int, float | None] = {}
        for n in range(1, 31):
            top = 7 if n >= 29 else 4
            answers[n] = None if rng.random() < 0.3 else float(rng.integers(1, top + 1))
        sets.append(answers)
        row = {f"q{n}": "" if v is None else str(int(v)) for n, v in answers.items()}
        rows.append(row | {"patient": f"P{i}", "visit": "baseline"})
    rows.append({"patient": "bad1", "q3": "5", "visit": "m3"})
    rows.append({"patient": "bad2", "q30": "x", "visit": "m3"})
    rows.append({"patient": "empty", "visit": "m6"})
    return write_csv(tmp_path / "in.csv", rows), sets


def test_prom_score_output_columns_values_and_summary(answers_csv, tmp_path):
    path, sets = answers_csv
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["prom", "score", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "23 response set(s): 21 accepted, 2 rejected" in result.stderr
    rows = read_csv(out.read_text(encoding="utf-8"))
    assert list(rows[0]) == ["patient", *ITEMS, "visit", *ORDER, "error"]
    for row, answers in zip(rows[:20], sets, strict=True):
        assert row["visit"] == "baseline"
        assert row["error"] == ""
        # The scores themselves are checked independently in test_qlq_c30; here the
        # command must write exactly what the library computes.
        row_in = [np.nan if answers[n] is None else answers[n] for n in range(1, 31)]
        expected = score_qlq_c30(np.array(row_in)).scores[0]
        for code, want in zip(ORDER, expected, strict=True):
            if np.isnan(want):
                assert row[code] == ""
            else:
                assert float(row[code]) == want
    assert rows[20]["error"] == "item q3 value 5 is outside the allowed range 1-4"
    assert rows[21]["error"] == "item q30 value 'x' is not a number"
    for row in rows[20:22]:
        assert all(row[c] == "" for c in ORDER)
    assert rows[22]["error"] == ""
    assert all(rows[22][c] == "" for c in ORDER)


def test_prom_score_not_rounded(tmp_path):
    row = dict.fromkeys(ITEMS, "1") | {"q10": "2", "q12": "1", "q18": "1"}
    path = write_csv(tmp_path / "in.csv", [row])
    result = runner.invoke(app, ["prom", "score", str(path)])
    assert result.exit_code == 0
    (out,) = read_csv(result.stdout)
    # RS = 4/3; S = (RS - 1) / 3 * 100, printed as the full double (no rounding)
    assert out["FA"] == repr(((1.0 + 2.0 + 1.0) / 3 - 1) / 3 * 100)
    assert len(out["FA"]) > 10


def test_prom_score_strict_exits_1(answers_csv):
    path, _ = answers_csv
    result = runner.invoke(app, ["prom", "score", str(path), "--strict"])
    assert result.exit_code == 1


def test_prom_score_strict_all_valid_exits_0(tmp_path):
    path = write_csv(tmp_path / "in.csv", [dict.fromkeys(ITEMS, "2")])
    result = runner.invoke(app, ["prom", "score", str(path), "--strict"])
    assert result.exit_code == 0


def test_prom_score_missing_columns_and_file(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("q1,q2\n1,2\n")
    result = runner.invoke(app, ["prom", "score", str(path)])
    assert result.exit_code == 2
    assert "missing column(s) q3" in result.stderr
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["prom", "score", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_prom_questionnaire(tmp_path):
    out = tmp_path / "q.json"
    result = runner.invoke(app, ["prom", "questionnaire", "--out", str(out)])
    assert result.exit_code == 0, result.output
    resource = json.loads(out.read_text())
    assert resource["resourceType"] == "Questionnaire"
    assert len(resource["item"]) == 30


def test_toxicity_terms_search_site_version():
    result = runner.invoke(app, ["toxicity", "terms", "--search", "xerostomia"])
    assert result.exit_code == 0
    assert "Dry mouth" in result.stdout
    assert "10013781" in result.stdout
    assert "1\u20133" in result.stdout
    result = runner.invoke(
        app, ["toxicity", "terms", "--site", "prostate", "--version", "6.0"]
    )
    assert result.exit_code == 0
    assert "Hematochezia" in result.stdout
    assert "Rectal hemorrhage" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--site", "knee"], "unknown treatment site 'knee'"),
        (["--version", "4.0"], "unknown CTCAE version"),
    ],
)
def test_toxicity_terms_bad_input(args, message):
    result = runner.invoke(app, ["toxicity", "terms", *args])
    assert result.exit_code == 2
    assert message in result.stderr
