"""Quality checks: integrity of encoded objects, CT completeness, prescription."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.ingest.qa import (
    BLOCKING,
    Reason,
    check_ct_series,
    check_integrity,
    check_prescription,
    classify_deid_refusal,
    is_blocking,
)
from tests.etl.ingest_corpus import bare_dataset_bytes, write_patient


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("qa")
    write_patient(folder, "QA1", 1)
    return folder


@pytest.mark.parametrize(
    "name", ["RTSTRUCT.dcm", "RTDOSE.dcm", "RTPLAN.dcm", "CT_0003.dcm"]
)
def test_good_objects_read_whole(phantom: Path, name: str) -> None:
    assert check_integrity((phantom / name).read_bytes()) is None


def test_bare_dataset_without_part10_header_is_accepted(phantom: Path) -> None:
    assert check_integrity(bare_dataset_bytes(phantom / "RTPLAN.dcm")) is None


@pytest.mark.parametrize("name", ["RTSTRUCT.dcm", "RTDOSE.dcm", "CT_0003.dcm"])
@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_objects_are_unreadable(
    phantom: Path, name: str, keep: float
) -> None:
    data = (phantom / name).read_bytes()
    finding = check_integrity(data[: int(len(data) * keep)])
    assert finding is not None
    assert finding.reason is Reason.UNREADABLE
    assert finding.blocking


def test_pixel_data_cut_at_an_element_boundary_is_unreadable(phantom: Path) -> None:
    import io

    import pydicom

    ds = pydicom.dcmread(phantom / "CT_0003.dcm")
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    finding = check_integrity(buffer.getvalue())
    assert finding is not None and finding.reason is Reason.UNREADABLE
    assert "truncated" in finding.detail


@pytest.mark.parametrize(
    "data", [b"", b"hello", b"%PDF-1.4 not dicom" * 20, b'{"a": 1}']
)
def test_non_dicom(data: bytes) -> None:
    finding = check_integrity(data)
    assert finding is not None
    assert finding.reason is Reason.NOT_DICOM


def test_deid_refusals_map_to_reason_codes() -> None:
    assert (
        classify_deid_refusal("no PatientID: a pseudonym cannot be derived")
        is Reason.NO_PATIENT_ID
    )
    assert classify_deid_refusal(
        "BurnedInAnnotation is YES: identifiers in the pixels"
    ) is (Reason.BURNED_IN_ANNOTATION)
    assert (
        classify_deid_refusal("already pseudonymised with another key (x)")
        is Reason.FOREIGN_KEY
    )
    assert (
        classify_deid_refusal("truncated or malformed DICOM data at byte 9")
        is Reason.UNREADABLE
    )


def test_blocking_and_warning_kinds_are_disjoint_and_stable() -> None:
    assert is_blocking("no-consent")
    assert not is_blocking(Reason.CT_INCOMPLETE)
    warnings = set(Reason) - BLOCKING
    assert {r.value for r in warnings} >= {
        "ct-missing", "ct-incomplete", "outside-dose-grid", "prescription-inconsistent",
        "duplicate-structure",
    }  # fmt: skip


def test_ct_gap_and_missing_referenced_slices() -> None:
    positions = [0.0, 3.0, 6.0, 9.0, 15.0, 18.0]  # one slice (12 mm) missing
    found = check_ct_series(positions, ["a", "b", "c"], ["a", "b"])
    assert [f.reason for f in found] == [Reason.CT_INCOMPLETE, Reason.CT_INCOMPLETE]
    assert "1 gap" in found[0].detail
    assert "1 CT slice" in found[1].detail
    assert check_ct_series([0.0, 3.0, 6.0, 9.0], ["a"], ["a"]) == []
    assert [f.reason for f in check_ct_series([], ["a"], [])] == [Reason.CT_MISSING]


@pytest.mark.parametrize(
    ("d95", "rx", "flagged"),
    [(60.0, 60.0, False), (54.1, 60.0, False), (53.9, 60.0, True), (66.5, 60.0, True),
     (None, 60.0, False), (50.0, None, False)],
)  # fmt: skip
def test_prescription_consistency(
    d95: float | None, rx: float | None, flagged: bool
) -> None:
    finding = check_prescription(d95, rx)
    assert (finding is not None) is flagged
    if finding:
        assert finding.reason is Reason.PRESCRIPTION_INCONSISTENT
        assert not finding.blocking
