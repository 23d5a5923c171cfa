from __future__ import annotations

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from etl.dicom.rtdose import read_rtdose
from etl.errors import DicomParseError, DoseGridError, GeometryError
from tests.etl._rt_builders import rtdose, save


def _values():
    k, j, i = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing="ij")
    return (100 * i + 10 * j + k).astype(np.uint32)


def test_reads_geometry_and_scales_to_gy(tmp_path):
    vals = _values()
    path = save(
        rtdose(vals, origin=(-10, 5, 30), spacing=(2.0, 3.0, 2.5)), tmp_path / "d.dcm"
    )
    g = read_rtdose(path)
    assert g.dose_gy.shape == (3, 4, 5)
    assert g.dose_gy[2, 3, 4] == pytest.approx(0.001 * (400 + 30 + 2))
    assert g.spacing_mm == (2.0, 3.0, 2.5)
    np.testing.assert_allclose(g.origin_mm, [-10, 5, 30])
    np.testing.assert_allclose(g.slice_dir, [0, 0, 1])
    # voxel (i=4, j=3, k=2) centre in patient coordinates
    p = g.to_patient_mm(np.array([[4 * 2.0, 3 * 3.0, 2 * 2.5]]))
    np.testing.assert_allclose(p, [[-2.0, 14.0, 35.0]])
    d, inside = g.interpolate(p)
    assert inside[0]
    assert d[0] == pytest.approx(0.432)


def test_cgy_is_converted_and_absolute_decreasing_offsets(tmp_path):
    vals = _values()
    ds = rtdose(vals, units="CGY", scaling=1.0, origin=(0, 0, 50), offsets=[50, 48, 46])
    g = read_rtdose(ds)
    assert g.dose_gy[0, 0, 1] == pytest.approx(1.0)  # 100 cGy
    assert g.spacing_mm[2] == pytest.approx(2.0)
    np.testing.assert_allclose(g.slice_dir, [0, 0, -1])  # frames go to decreasing z
    assert g.to_patient_mm(np.array([[0, 0, 4.0]]))[0, 2] == pytest.approx(46.0)


def test_relative_dose_needs_a_reference():
    ds = rtdose(_values(), units="RELATIVE", scaling=0.01)
    with pytest.raises(DoseGridError, match="RELATIVE"):
        read_rtdose(ds)
    assert read_rtdose(ds, relative_reference_gy=50.0).dose_gy.max() == pytest.approx(
        0.01 * 432 * 50
    )


def test_pydicom_bundled_rtdose_is_relative_per_beam():
    path = get_testdata_file("rtdose.dcm")
    with pytest.raises(DoseGridError, match="relative dose without a normalisation"):
        read_rtdose(path)
    g = read_rtdose(path, relative_reference_gy=1.0)
    assert g.summation_type == "BEAM"
    assert g.spacing_mm == (10.0, 10.0, 5.0)


def test_missing_scaling_non_uniform_and_oblique_are_errors():
    with pytest.raises(DicomParseError, match="DoseGridScaling"):
        read_rtdose(rtdose(_values(), scaling=None))
    with pytest.raises(DoseGridError, match="not uniformly spaced"):
        read_rtdose(rtdose(_values(), offsets=[0, 2, 5]))
    with pytest.raises(GeometryError, match="not orthogonal"):
        read_rtdose(rtdose(_values(), iop=(1, 0, 0, 0.6, 0.8, 0)))


def test_truncated_and_non_dicom_files(tmp_path):
    path = save(rtdose(_values()), tmp_path / "d.dcm")
    data = path.read_bytes()
    short = tmp_path / "short.dcm"
    short.write_bytes(data[: len(data) - 100])
    with pytest.raises(DicomParseError, match=r"short\.dcm"):
        read_rtdose(short)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"hello, not DICOM at all" * 10)
    with pytest.raises(DicomParseError, match="not a DICOM file"):
        read_rtdose(junk)
    with pytest.raises(DicomParseError, match="no such file"):
        read_rtdose(tmp_path / "absent.dcm")


@pytest.mark.parametrize(
    ("bits", "signed", "stored"),
    [(32, False, 32), (16, False, 16), (16, True, 16), (32, True, 32), (16, False, 12)],
)
def test_pixels_read_in_place_equal_pydicoms_decoding(tmp_path, bits, signed, stored):
    """Plain native pixel data is read without pydicom's decoder, to the same dose."""
    from pydicom import dcmread

    from etl.dicom.rtdose import _native_pixels

    vals = _values().astype(np.int64) * (-1 if signed else 1)
    ds = rtdose(vals.astype(np.uint32))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, stored, stored - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelData = vals.astype(f"<{'i' if signed else 'u'}{bits // 8}").tobytes()
    path = save(ds, tmp_path / "d.dcm")
    read = dcmread(path)
    expected = read.pixel_array.astype(np.float64) * 0.001
    assert (_native_pixels(read) is not None) == (stored == bits)
    dose = read_rtdose(path).dose_gy
    assert dose.dtype == np.float64
    assert dose.tobytes() == expected.tobytes()
    assert dose.min() == (-0.432 if signed else 0.0)
