from __future__ import annotations

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from rtcohort.cli import app
from tests.etl._dose_helpers import cube_contours, square
from tests.etl._rt_builders import rtdose, rtstruct, save
from tests.etl.dvh_csv import dvh_csv_rows

runner = CliRunner()


@pytest.fixture
def plan(tmp_path):
    # 40 mm grid of 2 mm voxels, centres 1 ... 39 mm; dose = 0.5 Gy/mm along x (in cGy).
    n = 20
    centres = 1.0 + 2.0 * np.arange(n)
    vals = np.broadcast_to((50 * centres)[None, None, :], (n, n, n)).astype(np.uint32)
    dose = save(
        rtdose(vals, origin=(1, 1, 1), units="CGY", scaling=1.0), tmp_path / "d.dcm"
    )
    cube = cube_contours(
        5.0, 1.0, (20.0, 20.0, 20.0)
    )  # 10 mm cube, dose 7.5 ... 12.5 Gy
    outside = [square(5.0, z, (45.0, 20.0)) for z in np.arange(15.5, 25.0, 1.0)]
    struct = rtstruct(
        {"Cube": cube, "Half out": outside, "Iso": [np.array([[20.0, 20.0, 20.0]])],
         "Empty": [], "Short": [cube[0][:2]]}
    )  # fmt: skip
    return dose, save(struct, tmp_path / "s.dcm")


def _table(text):
    return dvh_csv_rows(text)


def test_explicit_pair_writes_rows_metrics_and_warnings(plan, tmp_path):
    dose, struct = plan
    out = tmp_path / "dvh.csv"
    res = runner.invoke(
        app,
        ["dvh", "--rtstruct", str(struct), "--rtdose", str(dose), "--metric", "D50%[Gy]",
         "--metric", "V10Gy[%]", "--metric", "D5cc[Gy]", "--dvh-out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = {r["roi_name"]: r for r in _table(res.stdout)}
    comment = [line for line in res.stdout.splitlines() if line.startswith("#")]
    assert res.stdout.startswith("# ")
    assert len(comment) == 3
    assert "min_gy/max_gy" in comment[1]
    assert "voxel centres" in comment[1]
    assert "D0.03cc" in comment[2]
    assert list(_table(res.stdout)[0]) == [
        "dose_sop_instance_uid", "roi_number", "roi_name", "volume_cc", "outside_grid_cc",
        "dose_coverage_pct", "warning", "min_gy", "mean_gy", "max_gy", "D50%[Gy]",
        "V10Gy[%]", "D5cc[Gy]",
    ]  # fmt: skip
    assert set(rows) == {"Cube", "Half out"}
    cube = rows["Cube"]
    assert float(cube["volume_cc"]) == pytest.approx(1.0)
    assert float(cube["mean_gy"]) == pytest.approx(10.0, abs=0.01)
    assert float(cube["D50%[Gy]"]) == pytest.approx(10.0, abs=0.05)
    assert float(cube["V10Gy[%]"]) == pytest.approx(50.0, abs=1.0)
    assert cube["D5cc[Gy]"] == ""  # undefined: larger than the structure
    half = rows["Half out"]  # x from 40 to 50 mm, grid voxels end at 40 mm
    assert float(half["outside_grid_cc"]) == pytest.approx(1.0)
    assert half["min_gy"] == ""
    assert float(half["dose_coverage_pct"]) == 0.0
    assert "entirely outside the dose grid" in half["warning"]
    assert float(cube["dose_coverage_pct"]) == 100.0
    assert cube["warning"] == ""
    err = res.stderr
    assert "ROI 3 'Iso'" in err
    assert "POINT" in err
    assert "ROI 4 'Empty'" in err
    assert "no contours" in err
    assert "ROI 5 'Short'" in err
    assert "fewer than three" in err
    assert "ROI 2 'Half out'" in err
    assert "outside the dose grid" in err
    assert str(struct) in err
    curves = _table(out.read_text())
    assert {c["roi_name"] for c in curves} == {"Cube", "Half out"}
    first = next(c for c in curves if c["roi_name"] == "Cube")
    assert float(first["dose_gy"]) == 0.0
    assert float(first["volume_cc"]) == pytest.approx(1.0)


def test_eqd2_and_roi_filter(plan):
    dose, struct = plan
    res = runner.invoke(
        app,
        ["dvh", "--rtstruct", str(struct), "--rtdose", str(dose), "--roi", "cube",
         "--alpha-beta", "3", "--fractions", "5"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    (row,) = _table(res.stdout)
    # max 12.5 Gy in 5 fractions, a/b 3: 12.5 (2.5 + 3) / 5
    assert float(row["max_gy"]) == pytest.approx(12.5 * 5.5 / 5, abs=0.05)


def test_folder_pairs_by_frame_of_reference(plan):
    dose, _ = plan
    res = runner.invoke(app, ["dvh", str(dose.parent), "--roi", "Cube"])
    assert res.exit_code == 0, res.output
    assert len(_table(res.stdout)) == 1


def test_pydicom_bundled_files_mismatched_frames_exit_nonzero():
    res = runner.invoke(
        app,
        ["dvh", "--rtstruct", get_testdata_file("rtstruct.dcm"),
         "--rtdose", get_testdata_file("rtdose.dcm")],
    )  # fmt: skip
    assert res.exit_code == 1
    assert "rtdose.dcm" in res.stderr
    assert "RELATIVE" in res.stderr


def test_usage_errors(plan):
    dose, struct = plan
    res = runner.invoke(app, ["dvh", "--rtdose", str(dose)])
    assert res.exit_code == 2
    res = runner.invoke(
        app,
        ["dvh", "--rtstruct", str(struct), "--rtdose", str(dose), "--metric", "D95"],
    )
    assert res.exit_code == 2
    assert "D95" in res.stderr
    res = runner.invoke(
        app,
        ["dvh", "--rtstruct", str(struct), "--rtdose", str(dose), "--fractions", "5"],
    )
    assert res.exit_code == 2


def test_frame_mismatch_when_pairing_explicitly(plan, tmp_path):
    dose, _ = plan
    other = save(
        rtstruct({"A": cube_contours(5.0, 1.0)}, frame="9.9.9"), tmp_path / "o.dcm"
    )
    res = runner.invoke(app, ["dvh", "--rtstruct", str(other), "--rtdose", str(dose)])
    assert res.exit_code == 1
    assert "frame of reference" in res.stderr
    assert "o.dcm" in res.stderr
