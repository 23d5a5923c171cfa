"""etl.dose.structures and etl.dicom.dvh_table called directly (as a web page would)."""

from __future__ import annotations

import numpy as np
import pytest

from etl.dicom.dvh_table import dvh_rows, pair_folder
from etl.dicom.rtdose import read_rtdose
from etl.dicom.rtstruct import read_rtstruct
from etl.dose.metrics import parse_metric
from etl.dose.structures import Skip, structure_dvhs
from etl.errors import OutsideGridWarning, PairingError
from tests.etl._dose_helpers import cube_contours, square
from tests.etl._rt_builders import rtdose, rtstruct, save


@pytest.fixture
def files(tmp_path):
    # 40 mm grid of 2 mm voxels; dose = 0.5 Gy per mm along x (stored in cGy).
    n = 20
    centres = 1.0 + 2.0 * np.arange(n)
    vals = np.broadcast_to((50 * centres)[None, None, :], (n, n, n)).astype(np.uint32)
    dose = save(
        rtdose(vals, origin=(1, 1, 1), units="CGY", scaling=1.0), tmp_path / "d.dcm"
    )
    cube = cube_contours(5.0, 1.0, (20.0, 20.0, 20.0))  # x 15..25 mm: 7.5..12.5 Gy
    outside = [square(5.0, z, (45.0, 20.0)) for z in np.arange(15.5, 25.0, 1.0)]
    struct = rtstruct(
        {"Cube": cube, "Half out": outside, "Iso": [np.array([[20.0, 20.0, 20.0]])],
         "Empty": []}
    )  # fmt: skip
    return dose, save(struct, tmp_path / "s.dcm")


def test_structure_dvhs_one_outcome_per_roi(files):
    dose, struct = files
    found = structure_dvhs(read_rtstruct(struct), read_rtdose(dose))
    by_name = {f.roi.name: f for f in found}
    assert [f.roi.name for f in found] == ["Cube", "Half out", "Iso", "Empty"]
    cube = by_name["Cube"].dvh
    assert cube is not None
    assert cube.volume_cc == pytest.approx(1.0)  # 10 mm cube
    assert cube.mean_gy == pytest.approx(10.0, abs=0.01)  # linear dose, centre 20 mm
    assert (cube.min_gy, cube.max_gy) == pytest.approx((7.5, 12.5), abs=0.01)
    assert by_name["Half out"].warned(OutsideGridWarning)
    assert not by_name["Cube"].warned(OutsideGridWarning)
    assert by_name["Iso"].skipped is Skip.NOT_CLOSED_PLANAR
    assert by_name["Empty"].skipped is Skip.NO_CONTOURS
    only = structure_dvhs(read_rtstruct(struct), read_rtdose(dose), names=["CUBE"])
    assert [f.roi.name for f in only] == ["Cube"]


def test_pair_folder_and_rows(files, tmp_path):
    dose, struct = files
    (tmp_path / "notes.json").write_text("{}")
    warnings: list[tuple[str, str]] = []
    pairs = pair_folder(tmp_path, lambda w, m: warnings.append((str(w), m)))
    assert pairs == [(dose, struct)]
    assert warnings == []
    table = dvh_rows(
        pairs,
        [parse_metric("D50%[Gy]")],
        lambda w, m: warnings.append((str(w), m)),
        rois=["cube", "bladder"],
        eqd2=(5, 3.0),
    )
    (row,) = table.rows
    assert (row.roi_number, row.roi_name) == (1, "Cube")
    # EQD2 of 12.5 Gy in 5 fractions, alpha/beta 3 Gy: 12.5 (2.5 + 3) / (2 + 3)
    assert row.dvh.max_gy == pytest.approx(12.5 * 5.5 / 5, abs=0.05)
    # D50% = 10 Gy physical, 2 Gy per fraction: EQD2 10 (2 + 3) / (2 + 3) = 10 Gy
    assert row.metrics[0] == pytest.approx(10.0, abs=0.1)
    assert table.missing_rois == ["bladder"]


def test_frames_of_reference_must_match_when_strict(files, tmp_path):
    dose, _ = files
    other = save(
        rtstruct({"A": cube_contours(5.0, 1.0)}, frame="9.9.9"), tmp_path / "o.dcm"
    )
    warnings: list[str] = []
    with pytest.raises(PairingError, match=r"o\.dcm: frame of reference 9\.9\.9"):
        dvh_rows([(dose, other)], [], lambda w, m: None, strict_frames=True)
    table = dvh_rows([(dose, other)], [], lambda w, m: warnings.append(m))
    assert table.rows == []
    assert warnings[0].endswith("; skipped")
