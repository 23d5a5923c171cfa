from __future__ import annotations

import pytest
from pydicom.data import get_testdata_file

from etl.dicom.rtplan import read_rtplan
from etl.dicom.rtstruct import read_rtstruct
from etl.errors import DicomParseError


def test_pydicom_bundled_rtplan():
    plan = read_rtplan(get_testdata_file("rtplan.dcm"))
    assert plan.number_of_fractions == 30
    assert plan.prescription_gy == {"PTV": pytest.approx(30.826203)}
    assert [
        (b.number, b.radiation_type, b.beam_type, b.technique) for b in plan.beams
    ] == [(1, "PHOTON", "STATIC", "STATIC")]
    assert plan.beams[0].nominal_energy == 6.0
    assert plan.patient_positions == ("HFS",)
    assert plan.fraction_groups[0].beam_numbers == (1,)
    # It references a structure set that is not the bundled one (unrelated objects).
    ss = read_rtstruct(get_testdata_file("rtstruct.dcm"))
    assert ss.sop_instance_uid not in plan.referenced_structure_set_uids


def test_not_a_plan():
    with pytest.raises(DicomParseError, match="not an RT Plan"):
        read_rtplan(get_testdata_file("rtstruct.dcm"))
