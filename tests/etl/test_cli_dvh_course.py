"""`rtcohort dvh` with several --rtdose: the course sum, physical and EQD2."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from rtcohort.cli import app
from tests.etl._dose_helpers import cube_contours
from tests.etl._rt_builders import rtdose, rtplan, rtstruct, save
from tests.etl.dvh_csv import dvh_csv_rows
from tests.etl.test_course_dose import analytic_truth, plan_a, plan_b

runner = CliRunner()
SCALE = 1e-4  # Gy per stored unit


def _dose_file(path, fn, origin, spacing, shape, **kw):
    nk, nj, ni = shape
    x = origin[0] + spacing[0] * np.arange(ni)
    y = origin[1] + spacing[1] * np.arange(nj)
    z = origin[2] + spacing[2] * np.arange(nk)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    values = np.rint(fn(xx, yy, zz) / SCALE).astype(np.uint32)
    ds = rtdose(values, origin=origin, spacing=spacing, scaling=SCALE, **kw)
    return save(ds, path), str(ds.SOPInstanceUID)


@pytest.fixture
def course(tmp_path):
    a, uid_a = _dose_file(
        tmp_path / "a.dcm", plan_a, (1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (20, 20, 20)
    )
    b, uid_b = _dose_file(
        tmp_path / "b.dcm", plan_b, (2.3, 0.6, 1.9), (2.5, 2.75, 3.0), (14, 15, 13)
    )
    struct = rtstruct(
        {"Cube": cube_contours(5.0, 1.0, (20.0, 20.0, 20.0)),
         "Far": cube_contours(3.0, 1.0, (80.0, 80.0, 20.0))}
    )  # fmt: skip
    return a, b, save(struct, tmp_path / "s.dcm"), f"{uid_a}+{uid_b}"


def _table(text):
    return dvh_csv_rows(text)


def _run(*args):
    return runner.invoke(app, ["dvh", *map(str, args)])


def test_uniform_course_hand_values(tmp_path):
    a, _ = _dose_file(tmp_path / "ua.dcm", lambda x, y, z: 50.0 + 0 * x,
                      (1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (20, 20, 20))  # fmt: skip
    b, _ = _dose_file(tmp_path / "ub.dcm", lambda x, y, z: 10.0 + 0 * x,
                      (3.1, 2.2, 4.3), (3.0, 3.0, 3.0), (10, 10, 10))  # fmt: skip
    s = save(rtstruct({"Cube": cube_contours(5.0, 1.0, (20.0, 20.0, 20.0))}),
             tmp_path / "s.dcm")  # fmt: skip
    res = _run("--rtstruct", s, "--rtdose", a, "--rtdose", b, "--fractions", 25,
               "--fractions", 5, "--alpha-beta", 3, "--metric", "D95%[Gy]")  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = _table(res.stdout)
    assert list(rows[0])[-3:] == ["D95%[Gy]", "dose_kind", "alpha_beta_gy"]
    phys, eqd2 = rows
    assert (phys["dose_kind"], phys["alpha_beta_gy"]) == ("physical", "")
    assert (eqd2["dose_kind"], float(eqd2["alpha_beta_gy"])) == ("EQD2", 3.0)
    # 50 Gy / 25 + 10 Gy / 5: physical 60; EQD2(3) = 50 * 5/5 + 10 * 5/5 = 60
    for row in rows:
        assert float(row["mean_gy"]) == pytest.approx(60.0, abs=1e-3)
        assert float(row["D95%[Gy]"]) == pytest.approx(60.0, abs=1e-3)


def test_linear_course_matches_analytic_truth_per_structure_alpha_beta(course):
    a, b, s, uid = course
    res = _run("--rtstruct", s, "--rtdose", a, "--rtdose", b, "--fractions", 25,
               "--fractions", 5, "--alpha-beta", 10, "--alpha-beta-roi", "cube=3",
               "--metric", "D50%[Gy]", "--metric", "D95%[Gy]")  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = {(r["roi_name"], r["dose_kind"]): r for r in _table(res.stdout)}
    truth = analytic_truth(25, 5, 3.0)
    phys, eqd2 = rows["Cube", "physical"], rows["Cube", "EQD2"]
    assert phys["dose_sop_instance_uid"] == uid
    assert float(eqd2["alpha_beta_gy"]) == 3.0
    for row, label in ((phys, "physical"), (eqd2, "eqd2")):
        assert float(row["mean_gy"]) == pytest.approx(
            truth[label]["Mean[Gy]"], rel=5e-4
        )
        for metric in ("D50%[Gy]", "D95%[Gy]"):
            assert float(row[metric]) == pytest.approx(truth[label][metric], rel=5e-4)
    far = rows["Far", "physical"]  # entirely outside both grids
    assert "entirely outside the dose grid" in far["warning"]
    assert float(rows["Far", "EQD2"]["alpha_beta_gy"]) == 10.0


def test_usage_errors_name_the_option(course):
    a, b, s, _ = course
    res = _run("--rtstruct", s, "--rtdose", a, "--rtdose", b, "--fractions", 25,
               "--alpha-beta", 3)  # fmt: skip
    assert res.exit_code == 2
    assert "--fractions given 1 time(s) for 2 --rtdose" in res.stderr
    res = _run("--rtstruct", s, "--rtdose", a, "--rtdose", b, "--alpha-beta", 3)
    assert res.exit_code == 2
    assert "--alpha-beta needs --fractions" in res.stderr
    res = _run("--rtstruct", s, "--rtdose", a, "--rtdose", b, "--fractions", 25,
               "--fractions", 5, "--alpha-beta", 3, "--alpha-beta-roi", "Cube")  # fmt: skip
    assert res.exit_code == 2
    assert "--alpha-beta-roi 'Cube'" in res.stderr
    res = _run("--rtstruct", s, "--rtdose", a, "--alpha-beta-roi", "Cube=3")
    assert res.exit_code == 2
    assert "--alpha-beta-roi needs --alpha-beta" in res.stderr


def test_physical_course_needs_no_fractions(course):
    a, b, s, _ = course
    res = _run("--rtstruct", s, "--rtdose", a, "--rtdose", b, "--roi", "cube")
    assert res.exit_code == 0, res.output
    (row,) = _table(res.stdout)
    assert row["dose_kind"] == "physical"
    assert float(row["mean_gy"]) == pytest.approx(60.0, rel=5e-4)


def test_other_frame_and_rotated_grid_are_refused_naming_files(course, tmp_path):
    a, _, s, _ = course
    other, _ = _dose_file(tmp_path / "other.dcm", plan_b, (0.0, 0.0, 0.0),
                          (2.0, 2.0, 2.0), (5, 5, 5), frame="7.7.7")  # fmt: skip
    res = _run("--rtstruct", s, "--rtdose", a, "--rtdose", other)
    assert res.exit_code == 1
    assert "other.dcm: frame of reference 7.7.7 differs" in res.stderr
    assert "a.dcm" in res.stderr
    rotated, _ = _dose_file(tmp_path / "rot.dcm", plan_b, (0.0, 0.0, 0.0),
                            (2.0, 2.0, 2.0), (5, 5, 5), iop=(0, 1, 0, -1, 0, 0))  # fmt: skip
    res = _run("--rtstruct", s, "--rtdose", a, "--rtdose", rotated)
    assert res.exit_code == 1
    assert "rot.dcm: ImageOrientationPatient" in res.stderr


def _beams(folder, numbers, plan_beams=(1, 2, 3)):
    plan = rtplan(plan_beams)
    save(plan, folder / "plan.dcm")
    paths = []
    for n in numbers:
        p, _ = _dose_file(folder / f"beam{n}.dcm", lambda x, y, z: 20.0 + 0 * x,
                          (1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (20, 20, 20),
                          summation="BEAM", plan_uid=str(plan.SOPInstanceUID),
                          beam=n)  # fmt: skip
        paths.append(p)
    return paths


def test_beam_doses_are_summed_when_complete_and_held_when_not(course, tmp_path):
    _, _, s, _ = course
    beams = _beams(tmp_path, (1, 2, 3))
    args = ["--rtstruct", s, "--roi", "Cube"]
    for p in beams:
        args += ["--rtdose", p, "--fractions", 30]
    res = _run(*args, "--alpha-beta", 3)
    assert res.exit_code == 0, res.output
    phys, eqd2 = _table(res.stdout)
    assert float(phys["mean_gy"]) == pytest.approx(60.0, abs=1e-3)  # 3 x 20 Gy
    assert float(eqd2["mean_gy"]) == pytest.approx(60.0, abs=1e-3)  # 2 Gy/fraction
    res = _run("--rtstruct", s, "--rtdose", beams[0], "--rtdose", beams[1])
    assert res.exit_code == 1
    assert "per-beam dose held" in res.stderr
    assert "beam 3 of 3 missing" in res.stderr
