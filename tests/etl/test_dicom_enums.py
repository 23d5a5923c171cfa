"""DICOM defined terms: normalised once when read; vendors' terms read robustly."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.data import get_testdata_file

from etl.dicom.enums import (
    ContourGeometricType,
    DoseSummationType,
    DoseUnits,
    Modality,
    RTROIInterpretedType,
    normalise,
)
from etl.dicom.rtdose import read_rtdose
from etl.dicom.rtstruct import read_rtstruct
from etl.errors import DoseGridError
from etl.mapping.naming import is_target


def test_normalise_defined_and_unknown_terms():
    assert normalise(Modality, " rtstruct ") is Modality.RTSTRUCT
    assert normalise(DoseSummationType, "multi_plan") is DoseSummationType.MULTI_PLAN
    assert normalise(DoseSummationType, "PLAN_SUM") == "PLAN_SUM"
    assert normalise(RTROIInterpretedType, None) == ""
    # A member is its string: stored values and comparisons are unchanged.
    assert Modality.RTDOSE == "RTDOSE"
    assert f"{ContourGeometricType.CLOSED_PLANAR}" == "CLOSED_PLANAR"


def test_rtstruct_terms_are_normalised_and_vendor_terms_kept():
    ds = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    ds.Modality = "rtstruct"
    ds.RTROIObservationsSequence[0].RTROIInterpretedType = "itv"
    first = ds.ROIContourSequence[0]
    for c in first.ContourSequence:
        c.ContourGeometricType = "closed_planar"
    number = int(ds.RTROIObservationsSequence[0].ReferencedROINumber)
    ss = read_rtstruct(ds)
    roi = next(r for r in ss.rois if r.number == number)
    assert roi.interpreted_type == "ITV"
    assert not isinstance(roi.interpreted_type, RTROIInterpretedType)
    assert is_target(None, roi.interpreted_type)
    contoured = next(r for r in ss.rois if r.number == int(first.ReferencedROINumber))
    assert contoured.contour_type is ContourGeometricType.CLOSED_PLANAR


def test_rtdose_units_normalised_and_unknown_units_refused():
    ds = pydicom.dcmread(get_testdata_file("rtdose.dcm"), force=True)
    ds.DoseUnits = "Gy"
    gy = read_rtdose(ds)
    assert gy.units is DoseUnits.GY
    assert isinstance(gy.summation_type, DoseSummationType | str)
    ds.DoseUnits = "cgy"
    cgy = read_rtdose(ds)
    assert cgy.dose_gy.max() == pytest.approx(gy.dose_gy.max() / 100.0)
    ds.DoseUnits = "MU"
    with pytest.raises(DoseGridError, match="unknown DoseUnits 'MU'"):
        read_rtdose(ds)
