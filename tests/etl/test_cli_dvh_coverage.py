"""``rtcohort dvh`` on structures partly outside the dose grid (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from rtcohort.cli import app
from tests.etl._dose_helpers import cube_contours
from tests.etl._rt_builders import rtdose, rtstruct, save
from tests.etl.dvh_csv import dvh_csv_rows

runner = CliRunner()
METRICS = ("D50%[Gy]", "D0.5cc[Gy]", "V10Gy[%]", "Max[Gy]")


@pytest.fixture
def plan(tmp_path):
    # 2 mm voxels, centres 1 ... 39 mm (the grid reaches 40 mm); 0.5 Gy/mm along x.
    n = 20
    centres = 1.0 + 2.0 * np.arange(n)
    vals = np.broadcast_to((50 * centres)[None, None, :], (n, n, n)).astype(np.uint32)
    dose = save(
        rtdose(vals, origin=(1, 1, 1), units="CGY", scaling=1.0), tmp_path / "d.dcm"
    )
    struct = rtstruct(
        {
            "Inside": cube_contours(5.0, 1.0, (20.0, 20.0, 20.0)),
            # x from 30 to 50 mm: half of it beyond the grid's 40 mm
            "Half": cube_contours(10.0, 1.0, (40.0, 20.0, 20.0)),
        }
    )
    return dose, save(struct, tmp_path / "s.dcm")


def _rows(plan, *extra):
    dose, struct = plan
    args = ["dvh", "--rtstruct", str(struct), "--rtdose", str(dose), *extra]
    for m in METRICS:
        args += ["--metric", m]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return {r["roi_name"]: r for r in dvh_csv_rows(res.stdout)}


def test_below_min_coverage_metrics_are_empty_and_max_is_a_lower_bound(plan):
    rows = _rows(plan)
    half = rows["Half"]
    assert float(half["volume_cc"]) == pytest.approx(8.0)
    assert float(half["outside_grid_cc"]) == pytest.approx(4.0)
    assert float(half["dose_coverage_pct"]) == pytest.approx(50.0)
    for column in ("min_gy", "mean_gy", "D50%[Gy]", "D0.5cc[Gy]", "V10Gy[%]"):
        assert half[column] == "", column
    # max over the part inside: the dose at the grid's edge, continued (0.5 * 39 mm)
    assert float(half["max_gy"]) == pytest.approx(19.5, abs=0.01)
    assert float(half["Max[Gy]"]) == pytest.approx(19.5, abs=0.01)
    assert "covers 50% of the volume" in half["warning"]
    assert "lower bound" in half["warning"]
    inside = rows["Inside"]
    assert float(inside["dose_coverage_pct"]) == 100.0
    assert inside["warning"] == ""
    assert float(inside["D50%[Gy]"]) == pytest.approx(10.0, abs=0.05)


def test_min_coverage_option_lowers_the_threshold(plan):
    half = _rows(plan, "--min-coverage", "40")["Half"]
    assert float(half["mean_gy"]) == pytest.approx(17.5, abs=0.05)  # x 30..40 mm
    assert float(half["D50%[Gy]"]) == pytest.approx(17.5, abs=0.05)
    assert "outside the dose grid" in half["warning"]


def test_min_coverage_out_of_range_is_a_usage_error(plan):
    dose, struct = plan
    res = runner.invoke(
        app,
        ["dvh", "--rtstruct", str(struct), "--rtdose", str(dose),
         "--min-coverage", "120"],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "--min-coverage" in res.stderr
