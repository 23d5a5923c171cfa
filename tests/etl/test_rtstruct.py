from __future__ import annotations

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from etl.dicom.rtdose import read_rtdose
from etl.dicom.rtstruct import read_rtstruct
from etl.errors import DicomParseError
from tests.etl._dose_helpers import square
from tests.etl._rt_builders import rtdose, rtstruct


def test_pydicom_bundled_rtstruct_without_part10_header():
    ss = read_rtstruct(get_testdata_file("rtstruct.dcm"))
    assert [(r.number, r.name, r.contour_type) for r in ss.rois] == [
        (1, "patient", "CLOSED_PLANAR"),
        (2, "Isocenter 1", "POINT"),
        (3, "Isocenter 2", "POINT"),
    ]
    body = ss.roi("PATIENT")
    assert body.interpreted_type == "EXTERNAL"
    assert [c[0, 2] for c in body.contours] == [-200.0, -190.0, -180.0]
    assert all(c.shape[1] == 3 for c in body.contours)
    # The bundled dose belongs to another frame of reference (and another patient).
    dose = read_rtdose(get_testdata_file("rtdose.dcm"), relative_reference_gy=1.0)
    assert ss.frame_of_reference_uid != dose.frame_of_reference_uid


def test_roundtrip_of_contours_and_empty_roi():
    sq = square(5.0, 2.5)
    ss = read_rtstruct(rtstruct({"PTV": [sq], "Empty": []}, frame="1.9"))
    assert ss.frame_of_reference_uid == "1.9"
    np.testing.assert_allclose(ss.roi("PTV").contours[0], sq)
    assert ss.roi("Empty").contours == ()
    assert ss.roi("Empty").contour_type == ""
    with pytest.raises(KeyError):
        ss.roi("absent")


def test_wrong_object_and_bad_contour_data():
    with pytest.raises(DicomParseError, match="not an RT Structure Set"):
        read_rtstruct(rtdose(np.zeros((2, 2, 2), np.uint32)))
    ds = rtstruct({"A": [square(5.0, 0.0)]})
    ds.ROIContourSequence[0].ContourSequence[0].ContourData = [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(DicomParseError, match="not a multiple of 3"):
        read_rtstruct(ds)


def test_references_with_and_without_the_images(tmp_path):
    from pydicom import dcmread

    from etl.dicom.rtstruct import structure_references
    from tests.etl.ingest_corpus import write_patient

    truth = write_patient(tmp_path, "REF-1", 5)
    ds = dcmread(tmp_path / "RTSTRUCT.dcm")
    full = structure_references(ds)
    short = structure_references(ds, images=False)
    assert full.series_uids == (truth["uids"]["ct_series_instance_uid"],)
    assert len(full.image_uids) == len(truth["files"]["ct"])
    assert short.image_uids == ()
    assert (short.frame_of_reference_uids, short.series_uids) == (
        full.frame_of_reference_uids,
        full.series_uids,
    )
    # read_rtstruct keeps the series (the images are not part of a StructureSet).
    ss = read_rtstruct(tmp_path / "RTSTRUCT.dcm")
    assert ss.referenced_series_uids == full.series_uids
    assert ss.frame_of_reference_uid == full.frame_of_reference_uids[0]
