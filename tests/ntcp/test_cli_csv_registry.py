"""CSV reading, registry and the `rtcohort ntcp` commands end to end."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.special import expit, ndtr
from typer.testing import CliRunner

from ntcp.cohort_csv import format_dvh, read_cohort_csv
from ntcp.errors import CohortCsvError, UnknownModelError
from ntcp.geud import DVHSet
from ntcp.registry import compare_with_refit, get_model, list_models
from ntcp.simulate import simulate_lkb_cohort
from rtcohort.cli import app

runner = CliRunner()


def _write(path, rows, header=("patient_id", "n_fractions", "dvh", "outcome")):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def cohort_csv(tmp_path_factory):
    c = simulate_lkb_cohort(600, 30.0, 0.25, 0.5, alpha_beta_gy=3.0, seed=31)
    rng = np.random.default_rng(2)
    rows = [
        [
            f"P{i:04d}",
            int(c.dvhs.n_fractions[i]),
            format_dvh(c.dvhs.dose_gy[i], c.dvhs.volume_fraction[i]),
            int(c.outcome[i]),
            f"{rng.normal(65, 10):.1f}",
        ]
        for i in range(len(c.dvhs))
    ]
    path = tmp_path_factory.mktemp("ntcp") / "cohort.csv"
    return _write(path, rows, ("patient_id", "n_fractions", "dvh", "outcome", "age"))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ["P1", "30", "10;0.5|20;0.4", "1"],
            r"line 2, field dvh: volume fractions sum",
        ),
        (["P1", "30", "-1;0.5|20;0.5", "1"], r"line 2, field dvh: negative dose"),
        (["P1", "30", "10;0.5|20", "1"], r"line 2, field dvh: bin 2"),
        (["P1", "30", "10;0.5|20;0.5", "2"], r"line 2, field outcome"),
        (["P1", "2.5", "10;0.5|20;0.5", "1"], r"line 2, field n_fractions"),
        (["", "30", "10;0.5|20;0.5", "1"], r"line 2, field patient_id"),
    ],
)
def test_csv_errors_name_line_and_field(tmp_path, row, message):
    path = _write(tmp_path / "bad.csv", [row])
    with pytest.raises(CohortCsvError, match=message):
        read_cohort_csv(path)


def test_csv_duplicate_and_missing_column(tmp_path):
    rows = [["P1", "30", "10;1", "1"], ["P1", "30", "10;1", "0"]]
    with pytest.raises(
        CohortCsvError, match="line 3, field patient_id: duplicate of line 2"
    ):
        read_cohort_csv(_write(tmp_path / "dup.csv", rows))
    path = _write(
        tmp_path / "nocol.csv",
        [["P1", "30", "10;1"]],
        ("patient_id", "n_fractions", "dvh"),
    )
    with pytest.raises(CohortCsvError, match="line 1: missing column"):
        read_cohort_csv(path)


def test_csv_round_trip(tmp_path):
    path = _write(
        tmp_path / "ok.csv", [["A", "", "10;0.25|30;0.75", "0"], ["B", "5", "5;1", "1"]]
    )
    t = read_cohort_csv(path)
    assert t.patient_ids == ["A", "B"]
    assert np.isnan(t.dvhs.n_fractions[0])
    np.testing.assert_allclose(t.dvhs.dose_gy[0], [10, 30])
    assert len(t.sha256) == 64


def test_registry_contents_and_lkb_prediction():
    ids = {m.id for m in list_models()}
    assert {
        "burman1991_lung_pneumonitis",
        "quantec2010_rectum_grade2",
        "seppenwoolde2003_lungs_pneumonitis",
        "christianen2012_dysphagia",
    } <= ids
    rectum = get_model("quantec2010_rectum_grade2")
    # Uniform 76.9 Gy EQD2 -> NTCP 0.5; physical 2-Gy fractions equal EQD2.
    dvh = DVHSet.from_dvhs([([76.9], [1.0])], n_fractions=[38.45])
    assert rectum.predict_ntcp(dvh)[0] == pytest.approx(0.5, abs=1e-9)
    lung = get_model("burman1991_lung_pneumonitis")
    assert (lung.parameters["td50_gy"], lung.parameters["m"], lung.parameters["n"]) == (
        24.5,
        0.18,
        0.87,
    )
    # 60 Gy in 20 fractions to half the lung, 0 to the rest: EQD2 = 60*(3+3)/5 = 72.
    dvh = DVHSet.from_dvhs([([0.0, 60.0], [0.5, 0.5])], n_fractions=[20])
    g = (0.5 * 72.0 ** (1 / 0.87)) ** 0.87
    assert lung.predict_ntcp(dvh)[0] == pytest.approx(ndtr((g - 24.5) / (0.18 * 24.5)))
    with pytest.raises(UnknownModelError):
        get_model("nope")


def test_christianen_logistic_by_hand():
    import pandas as pd

    model = get_model("christianen2012_dysphagia")
    feats = pd.DataFrame(
        {"dmean_musc_constrict_s_gy": [50.0], "dmean_larynx_sg_gy": [40.0]}
    )
    expected = expit(-6.09 + 0.057 * 50 + 0.037 * 40)
    assert model.predict_ntcp(features=feats)[0] == pytest.approx(expected)


def test_compare_with_refit_improves_calibration_of_wrong_model():
    c = simulate_lkb_cohort(1500, 40.0, 0.2, 0.09, alpha_beta_gy=3.0, seed=12)
    out = compare_with_refit(get_model("quantec2010_rectum_grade2"), c.dvhs, c.outcome)
    assert abs(out["refit"]["calibration_intercept"]) < 0.05
    assert abs(out["published"]["calibration_intercept"]) > 0.5


def test_cli_fit_lkb_json_contract(cohort_csv, tmp_path):
    out = tmp_path / "fit.json"
    rep = tmp_path / "fit.html"
    res = runner.invoke(
        app,
        [
            "ntcp",
            "fit",
            "--cohort",
            str(cohort_csv),
            "--model",
            "lkb",
            "--alpha-beta",
            "3",
            "--fix-n",
            "0.5",
            "--bootstrap",
            "5",
            "--seed",
            "3",
            "--json",
            str(out),
            "--report",
            str(rep),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["model"] == "lkb"
    assert data["n_patients"] == 600
    assert set(data["parameters"]) == {"td50_gy", "m", "n"}
    assert data["parameters"]["n"] == {"estimate": 0.5, "ci95": None, "fixed": True}
    lo, hi = data["parameters"]["td50_gy"]["ci95"]
    assert lo < data["parameters"]["td50_gy"]["estimate"] < hi
    assert 0.5 < data["auc"] <= 1
    assert set(data["calibration"]) == {"slope", "intercept"}
    assert data["validation"]["n_bootstrap"] == 5
    assert len(data["provenance"]["data_sha256"]) == 64
    assert "data:image/png;base64," in rep.read_text()
    # Predict with the stored model and compare with the formula.
    pred = tmp_path / "pred.csv"
    res = runner.invoke(
        app,
        [
            "ntcp",
            "predict",
            "--model",
            str(out),
            "--cohort",
            str(cohort_csv),
            "--out",
            str(pred),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(pred.open()))
    assert list(rows[0]) == ["patient_id", "ntcp"]
    assert len(rows) == 600


def test_cli_fit_logistic_with_covariate(cohort_csv, tmp_path):
    out = tmp_path / "lg.json"
    res = runner.invoke(
        app,
        [
            "ntcp",
            "fit",
            "--cohort",
            str(cohort_csv),
            "--model",
            "logistic",
            "--metric",
            "Mean[Gy]",
            "--covariates",
            "age",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert set(data["parameters"]) == {"intercept", "Mean[Gy]", "age"}


def test_cli_bad_input_one_line_error(tmp_path):
    path = _write(tmp_path / "bad.csv", [["P1", "30", "10;0.5|20;0.4", "1"]])
    res = runner.invoke(
        app, ["ntcp", "fit", "--cohort", str(path), "--json", str(tmp_path / "o.json")]
    )
    assert res.exit_code == 2
    assert "line 2, field dvh" in res.output
    assert "Traceback" not in res.output
    path = _write(
        tmp_path / "none.csv", [["P1", "30", "10;1", "0"], ["P2", "30", "20;1", "0"]]
    )
    res = runner.invoke(
        app, ["ntcp", "fit", "--cohort", str(path), "--json", str(tmp_path / "o.json")]
    )
    assert res.exit_code == 2
    assert "no events" in res.output


def test_cli_models_lists_registry():
    res = runner.invoke(app, ["ntcp", "models"])
    assert res.exit_code == 0
    assert "quantec2010_rectum_grade2" in res.output
    assert "Musc_Constrict_S" in res.output


def test_cli_from_db_rejects_a_malformed_endpoint(tmp_path):
    out = str(tmp_path / "o.json")
    res = runner.invoke(
        app,
        [
            "ntcp",
            "fit",
            "--from-db",
            "--endpoint",
            "ctcae:Pneumonitis>2",
            "--json",
            out,
        ],
    )
    assert res.exit_code == 2
    assert "expected ctcae" in res.output
