"""Clean Descriptors: name parts go where they stand as words, anatomy stays.

A patient called Art, Liv, Per or Ina must keep ``Heart``, ``Liver``,
``Esophagus_Upper`` and ``SpinalCord``: a structure whose name is cut loses its
TG-263 mapping and drops out of every dose read. Their names still go wherever they
stand as words, in any case, glued to another word by a change of case, and IDs
and dates go wherever they occur.
"""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from etl.deid.keys import CentreKey
from etl.deid.policy import make_cleaner
from etl.deid.pseudonymise import DeidOutcome, deidentify_bytes

# (ROI name sent, ROI name stored) for a patient Art-Ina^Liv Per
ROIS = [
    ("Heart", "Heart"),
    ("Liver", "Liver"),
    ("SpinalCord", "SpinalCord"),
    ("Esophagus_Upper", "Esophagus_Upper"),
    ("A_Carotid_L", "A_Carotid_L"),
    ("Lens_L", "Lens_L"),
    ("PTV_ART", "PTV_***"),
    ("Bladder_liv", "Bladder_***"),
    ("HeartArt", "Heart***"),
    ("PTVIna", "PTV***"),
    ("Per 1", "*** 1"),
    ("art", "***"),
]


def _struct(name: str, pid: str) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    ds.PatientName, ds.PatientID = name, pid
    rois = ds.StructureSetROISequence
    ds.StructureSetROISequence = [
        _roi(rois[0], k + 1, sent) for k, (sent, _) in enumerate(ROIS)
    ]
    ds.StructureSetLabel = "Art-Liv"
    ds.StudyDescription = f"Plan of per ina 2024 {pid}x"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _roi(template: Dataset, number: int, text: str) -> Dataset:
    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = template.ReferencedFrameOfReferenceUID
    roi.ROIName = text
    roi.ROIGenerationAlgorithm = "MANUAL"
    return roi


def test_anatomy_survives_and_name_parts_go() -> None:
    data = _struct("Art-Ina^Liv Per", "AB123456")
    result = deidentify_bytes(data, CentreKey("HUS", bytes(range(32))))
    assert result.outcome is DeidOutcome.PSEUDONYMISED, result.reason
    after = pydicom.dcmread(io.BytesIO(result.data), force=True)
    assert [r.ROIName for r in after.StructureSetROISequence] == [s for _, s in ROIS]
    assert after.StructureSetLabel == "***-***"
    assert after.StudyDescription == "Plan of *** *** 2024 ***x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DoeJane", "******"),  # two capitalised words glued
        ("Plan12345678b", "Plan***b"),  # an ID goes wherever it occurs
        ("born 1960-02-29", "born ***"),
        ("Pericardium", "Pericardium"),  # 'Per' inside a word
        ("PER", "***"),
        ("Upper per", "Upper ***"),
    ],
)
def test_cleaner_edges(text: str, expected: str) -> None:
    clean = make_cleaner(["12345678", "1960-02-29", "Jane", "Doe", "Per"], ["latin_1"])
    out = clean(text.encode(), "LO").decode().rstrip()
    assert out == expected
