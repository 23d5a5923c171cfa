"""Pseudonymisation per PS3.15 Table E.1-1: the interface contract of issue 4."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from etl.deid import pseudonymise as deid
from etl.deid.folder import deidentify_folder
from etl.deid.keys import CentreKey, new_key
from etl.deid.pseudonymise import DeidOutcome, deidentify_bytes
from tests.etl.deid_sets import write_linked_set

TABLE = Path(deid.__file__).parent.parent / "data" / "dicom" / "ps3.15_table_E.1-1.csv"
OPTION_COLUMNS = (
    "retain_long_modified_dates",
    "retain_patient_characteristics",
    "retain_device_identity",
    "clean_descriptors",
)
PYDICOM_FILES = ("rtplan.dcm", "rtstruct.dcm", "rtdose.dcm", "CT_small.dcm")


def _expected_actions() -> dict[int, str]:
    """Effective action per tag, computed here from the shipped CSV."""
    actions = {}
    with TABLE.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                tag = int(row["tag"].strip("()").replace(",", ""), 16)
            except ValueError:
                continue  # pattern rows: checked separately
            chosen = [row[c] for c in OPTION_COLUMNS if row[c]]
            actions[tag] = (
                ("C" if "C" in chosen else chosen[0])
                if chosen
                else row["basic_profile"]
            )
    return actions


ACTIONS = _expected_actions()
MUST_CHANGE = {t for t, a in ACTIONS.items() if a not in ("K", "C")}


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.new("sha512_256").name).digest()


def _expected_pseudonym(key: CentreKey, patient_id: str) -> str:
    sub = _hmac(key.secret, b"rtcohort/pseudonym/v1")
    digest = _hmac(sub, patient_id.strip().encode())
    return f"{key.centre}-{base64.b32encode(digest[:17]).decode()[:26]}"


def _expected_offset(key: CentreKey, patient_id: str) -> int:
    """-n + u64 mod n for a key bounded to n days; -3650 + u64 mod 3286 if legacy."""
    sub = _hmac(key.secret, b"rtcohort/date-offset/v1")
    value = int.from_bytes(_hmac(sub, patient_id.encode())[:8], "big")
    if key.date_shift_max_days is None:
        return -3650 + value % (3650 - 365 + 1)
    return -key.date_shift_max_days + value % key.date_shift_max_days


def _values(ds: Dataset) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for elem in ds.iterall():
        if elem.VR == "SQ" or elem.value in (None, "", b"") or elem.tag == 0x7FE00010:
            continue
        found.setdefault(int(elem.tag), set()).add(str(elem.value))
    return found


def _sequences(ds: Dataset) -> dict[int, int]:
    return {int(e.tag): len(e.value) for e in ds.iterall() if e.VR == "SQ"}


def _read(path: Path | bytes) -> Dataset:
    if isinstance(path, bytes):
        return pydicom.dcmread(io.BytesIO(path), force=True)
    return pydicom.dcmread(path, force=True)


def assert_contract_one(before: Dataset, after: Dataset) -> None:
    """No X/Z/D/U value left as it was; no private tag; marks present."""
    old, new = _values(before), _values(after)
    for tag in MUST_CHANGE & old.keys():
        kept = old[tag] & new.get(tag, set())
        assert not kept, f"{tag:08X} ({ACTIONS[tag]}) kept {kept}"
    sequences = _sequences(after)
    for tag, count in _sequences(before).items():
        if ACTIONS.get(tag) in ("X", "X/Z", "X/D", "X/Z/D", "Z") and count:
            assert not sequences.get(tag), f"sequence {tag:08X} kept"
    assert not [e.tag for e in after.iterall() if e.tag.is_private]
    assert not [e.tag for e in after.iterall() if 0x5000 <= e.tag.group <= 0x60FF]
    assert after.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in after.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107", "113108", "113109", "113105"]
    assert after.LongitudinalTemporalInformationModified == "MODIFIED"
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    assert after.SOPClassUID == before.SOPClassUID


@pytest.fixture(scope="module")
def key() -> CentreKey:
    return CentreKey("AMS01", bytes(range(32)), "2025-01-01T00:00:00Z")


@pytest.fixture(scope="module")
def linked(
    tmp_path_factory: pytest.TempPathFactory, key: CentreKey
) -> tuple[Path, Path, dict]:
    src = tmp_path_factory.mktemp("linked_in")
    uids = {
        "P1": write_linked_set(src / "p1", "P1-0042", "Doe^Jane", date="20240115"),
        "P2": write_linked_set(
            src / "p2" / "course", "P2-0099", "Roe^Richard", date="20230601"
        ),
    }
    (src / "notes.txt").write_text("not DICOM")
    out = tmp_path_factory.mktemp("linked_out")
    report = deidentify_folder(src, out, key)
    return src, out, {"uids": uids, "report": report}


def _pairs(src: Path, out: Path) -> list[tuple[Dataset, Dataset]]:
    return [
        (_read(p), _read(out / p.relative_to(src))) for p in sorted(src.rglob("*.dcm"))
    ]


@pytest.mark.parametrize("name", PYDICOM_FILES)
def test_contract_on_pydicom_rt_files(name: str, key: CentreKey) -> None:
    data = Path(get_testdata_file(name)).read_bytes()
    result = deidentify_bytes(data, key)
    assert result.outcome is DeidOutcome.PSEUDONYMISED, result.reason
    before, after = _read(data), _read(result.data)
    assert_contract_one(before, after)
    assert str(before.PatientName).encode() not in result.data
    assert (
        after.PatientID
        == after.PatientName
        == _expected_pseudonym(key, before.PatientID)
    )


def test_contract_checker_detects_leaks() -> None:
    before = _read(Path(get_testdata_file("rtplan.dcm")))
    with pytest.raises(AssertionError):
        assert_contract_one(before, before)


def test_contract_on_linked_set(
    linked: tuple[Path, Path, dict], key: CentreKey
) -> None:
    src, out, info = linked
    pairs = _pairs(src, out)
    assert len(pairs) == 14
    for before, after in pairs:
        assert_contract_one(before, after)
    for path in out.rglob("*.dcm"):
        data = path.read_bytes()
        for planted in (
            b"Doe",
            b"Roe",
            b"P1-0042",
            b"P2-0099",
            b"Springfield",
            b"19600229",
        ):
            assert planted not in data, (path.name, planted)
    report = info["report"]
    assert report.counts == {"pseudonymised": 14, "quarantined": 1}
    assert report.quarantined[0]["file"] == "notes.txt"
    assert report.patients == 2


def test_references_resolve_one_to_one(linked: tuple[Path, Path, dict]) -> None:
    src, out, _ = linked
    pairs = _pairs(src, out)
    mapping = {b.SOPInstanceUID: a.SOPInstanceUID for b, a in pairs}
    assert len(set(mapping.values())) == len(mapping)

    def refs(ds: Dataset) -> list[str]:
        return [
            str(e.value)
            for e in ds.iterall()
            if e.keyword == "ReferencedSOPInstanceUID"
        ]

    resolved = 0
    for before, after in pairs:
        want = [mapping[r] for r in refs(before) if r in mapping]
        got = [r for r in refs(after) if r in mapping.values()]
        assert got == want
        resolved += len(want)
    assert resolved > 20
    # frames of reference, studies and series: same grouping before and after
    for keyword in ("FrameOfReferenceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        groups = {}
        for before, after in pairs:
            for b, a in zip(
                [e.value for e in before.iterall() if e.keyword == keyword],
                [e.value for e in after.iterall() if e.keyword == keyword],
                strict=True,
            ):
                groups.setdefault(b, set()).add(a)
        assert all(len(v) == 1 for v in groups.values())
        assert len({next(iter(v)) for v in groups.values()}) == len(groups)


def test_dates_shift_by_one_constant_per_patient(
    linked: tuple[Path, Path, dict], key: CentreKey
) -> None:
    src, out, _ = linked
    offsets: dict[str, set[int]] = {}
    for before, after in _pairs(src, out):
        shifts = offsets.setdefault(before.PatientID, set())
        for keyword in ("StudyDate", "ContentDate", "RTPlanDate", "StructureSetDate"):
            if keyword in before:
                old = date.fromisoformat(before.data_element(keyword).value)
                new = date.fromisoformat(after.data_element(keyword).value)
                shifts.add((new - old).days)
        if "ReferencedStructureSetSequence" in before:  # a date inside a sequence
            old = before.ReferencedStructureSetSequence[0].ReviewDate
            new = after.ReferencedStructureSetSequence[0].ReviewDate
            shifts.add((date.fromisoformat(new) - date.fromisoformat(old)).days)
        assert after.AcquisitionDateTime[8:] == before.AcquisitionDateTime[8:]
        assert after.StudyTime == before.StudyTime
        assert "PatientBirthDate" not in after or after.PatientBirthDate == ""
    assert offsets == {
        pid: {_expected_offset(key, pid)} for pid in ("P1-0042", "P2-0099")
    }
    assert all(-182 <= next(iter(v)) <= -1 for v in offsets.values())


def test_one_pseudonym_per_patient(
    linked: tuple[Path, Path, dict], key: CentreKey
) -> None:
    src, out, _ = linked
    names: dict[str, set[str]] = {}
    for before, after in _pairs(src, out):
        names.setdefault(before.PatientID, set()).add(after.PatientID)
        assert after.PatientName == after.PatientID
    assert names == {
        pid: {_expected_pseudonym(key, pid)} for pid in ("P1-0042", "P2-0099")
    }


def test_rerun_gives_identical_output(
    linked: tuple[Path, Path, dict], key: CentreKey, tmp_path: Path
) -> None:
    src, out, _ = linked
    deidentify_folder(src, tmp_path, key)
    for path in out.rglob("*.dcm"):
        assert (tmp_path / path.relative_to(out)).read_bytes() == path.read_bytes()


def test_other_key_gives_other_uids(
    linked: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    src, out, _ = linked
    other = CentreKey("AMS01", bytes(32))
    deidentify_folder(src, tmp_path, other)
    a = {_read(p).SOPInstanceUID for p in out.rglob("*.dcm")}
    b = {_read(p).SOPInstanceUID for p in tmp_path.rglob("*.dcm")}
    assert not a & b


def test_roi_names_survive_cleaning(linked: tuple[Path, Path, dict]) -> None:
    _, out, _ = linked
    after = _read(out / "p1" / "RS.dcm")
    names = [roi.ROIName for roi in after.StructureSetROISequence]
    assert names == ["PTV", "Heart", "Bladder_***"]
    assert after.StudyDescription == "Pelvis plan for ***"
    assert after.SeriesDescription == "planning CT"
    assert after.ROIContourSequence[0].ContourSequence[0].ContourData[3] == 4


def test_uids_are_2_25_and_well_known_kept(linked: tuple[Path, Path, dict]) -> None:
    _, out, _ = linked
    after = _read(out / "p1" / "RS.dcm")
    for elem in after.iterall():
        if elem.VR == "UI" and elem.value:
            uid = str(elem.value)
            assert len(uid) <= 64
            if "ClassUID" in elem.keyword:
                assert uid.startswith("1.2.840.10008.")
            else:
                assert re.fullmatch(r"2\.25\.[1-9]\d{0,38}", uid), (elem.keyword, uid)
    assert after.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_characteristics_and_device_identity_retained(
    linked: tuple[Path, Path, dict],
) -> None:
    src, out, _ = linked
    before, after = _read(src / "p1" / "CT_0001.dcm"), _read(out / "p1" / "CT_0001.dcm")
    # the age is recomputed from the real birth (1960-02-29) and study (2024-01-15)
    assert (after.PatientSex, after.PatientAge) == ("F", "063Y")
    assert (after.StationName, after.DeviceSerialNumber) == ("LINAC7", "SN-4711")
    assert after.PixelData == before.PixelData
    assert "OtherPatientIDs" not in after
    assert "PatientAddress" not in after


def test_already_pseudonymised_passes_and_foreign_key_refused(key: CentreKey) -> None:
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    once = deidentify_bytes(data, key)
    twice = deidentify_bytes(once.data, key)
    assert twice.outcome is DeidOutcome.ALREADY_DONE
    assert twice.data == once.data
    foreign = deidentify_bytes(once.data, new_key("AMS01"))
    assert foreign.outcome is DeidOutcome.QUARANTINED
    assert key.fingerprint in foreign.reason


def test_burned_in_annotation_quarantined(key: CentreKey) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    result = deidentify_bytes(buffer.getvalue(), key)
    assert result.outcome is DeidOutcome.QUARANTINED
    assert result.data is None
    assert "BurnedInAnnotation" in result.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"%PDF-1.4 not dicom at all, really", "not DICOM"),
        (Path(get_testdata_file("CT_small.dcm")).read_bytes()[:3000], "truncated"),
        (b"", "not DICOM"),
    ],
)
def test_bad_input_quarantined_with_reason(
    payload: bytes, reason: str, key: CentreKey
) -> None:
    result = deidentify_bytes(payload, key)
    assert result.outcome is DeidOutcome.QUARANTINED
    assert reason in result.reason


def test_missing_patient_id_quarantined(key: CentreKey) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PatientID
    buffer = io.BytesIO()
    ds.save_as(buffer)
    assert "PatientID" in deidentify_bytes(buffer.getvalue(), key).reason


def test_contour_data_bytes_not_reencoded(key: CentreKey) -> None:
    ds = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    raw_before = [
        c.get_item(0x30060050).value
        for rc in ds.ROIContourSequence
        for c in rc.ContourSequence
    ]
    data = Path(get_testdata_file("rtstruct.dcm")).read_bytes()
    after = _read(deidentify_bytes(data, key).data)
    raw_after = [
        c.get_item(0x30060050).value
        for rc in after.ROIContourSequence
        for c in rc.ContourSequence
    ]
    assert raw_after == raw_before


def test_dataset_api(key: CentreKey) -> None:
    ds = pydicom.dcmread(get_testdata_file("rtplan.dcm"))
    out = deid.deidentify_dataset(ds, key)
    assert out.PatientID == _expected_pseudonym(key, "id00001")
    assert out.SOPInstanceUID == deid.remap_uid(key, ds.SOPInstanceUID)


def test_public_api_values(key: CentreKey) -> None:
    assert deid.pseudonym(key, "12345") == _expected_pseudonym(key, "12345")
    assert len(deid.pseudonym(CentreKey("ABCDEFGHIJKLMNOPQRST", bytes(32)), "x")) <= 50
    assert deid.date_offset_days(key, "12345") == _expected_offset(key, "12345")
    shifted = date(2024, 3, 1) + timedelta(days=_expected_offset(key, "12345"))
    assert deid.shift_date(key, "12345", date(2024, 3, 1)) == shifted
    assert deid.remap_uid(key, "1.2.840.10008.1.2") == "1.2.840.10008.1.2"
    assert deid.remap_uid(key, "1.2.3.4") == deid.remap_uid(key, "1.2.3.4")
    assert deid.remap_uid(key, "1.2.3.4") != deid.remap_uid(key, "1.2.3.5")


def test_offsets_spread_uniformly_over_the_bounded_range(key: CentreKey) -> None:
    from scipy.stats import chi2

    assert key.date_shift_max_days == 182  # the default bound
    n_ids, days = 36_400, 182
    values = [deid.date_offset_days(key, f"patient-{i}") for i in range(n_ids)]
    assert min(values) == -182 and max(values) == -1
    counts = np.bincount(np.asarray(values) + days, minlength=days)
    assert counts.sum() == n_ids and (counts > 0).all()
    expected = n_ids / days  # 200 per day
    statistic = float(((counts - expected) ** 2 / expected).sum())
    # uniform over 182 days: the statistic is chi-square with 181 degrees of freedom
    assert statistic < chi2.ppf(0.999, days - 1)
    assert np.abs(counts - expected).max() < 6 * np.sqrt(expected)


@pytest.mark.parametrize("bound", [1, 30, 182, 3650])
def test_offsets_within_any_bound_and_deterministic(bound: int) -> None:
    key = CentreKey("AMS01", bytes(range(32)), date_shift_max_days=bound)
    values = [deid.date_offset_days(key, f"p{i}") for i in range(3000)]
    assert all(-bound <= v <= -1 for v in values)
    assert values == [_expected_offset(key, f"p{i}") for i in range(3000)]
    if bound <= 182:  # 3000 ids cover every day of a short range
        assert set(values) == set(range(-bound, 0))


def test_legacy_key_keeps_its_old_offsets(key: CentreKey) -> None:
    legacy = CentreKey(key.centre, key.secret, key.created_utc, None)
    values = [deid.date_offset_days(legacy, f"patient-{i}") for i in range(2000)]
    assert all(-3650 <= v <= -365 for v in values)
    assert len(set(values)) > 1000  # not one offset for everybody
    assert values[:50] == [_expected_offset(legacy, f"patient-{i}") for i in range(50)]
    # the pseudonym does not depend on the range; the fingerprint does
    assert deid.pseudonym(legacy, "12345") == deid.pseudonym(key, "12345")
    assert legacy.fingerprint != key.fingerprint


def test_shipped_table_rows() -> None:
    with TABLE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 621
    assert ACTIONS[0x30060026] == "C"  # ROI Name: Clean Descriptors
    assert ACTIONS[0x00100030] == "Z"  # Patient's Birth Date
    assert ACTIONS[0x00181200] == "C"  # calibration date: dates option beats device K
    assert len(MUST_CHANGE) == 270


def test_phantom_set(tmp_path: Path, key: CentreKey) -> None:
    from etl.phantom import write as phantom
    from etl.phantom.spec import spec_from_options

    spec = spec_from_options("sphere", 10, dose_grid_mm=2, contour_spacing_mm=2)
    for pid in ("PH-1", "PH-2"):
        phantom.write_phantom(tmp_path / "in" / pid, spec, patient_id=pid, seed=7)
    shutil.copy(tmp_path / "in" / "PH-1" / "RTPLAN.dcm", tmp_path / "in" / "copy.dcm")
    report = deidentify_folder(tmp_path / "in", tmp_path / "out", key)
    assert report.patients == 2
    src, out = tmp_path / "in", tmp_path / "out"
    pairs = _pairs(src, out)
    mapping = {b.SOPInstanceUID: a.SOPInstanceUID for b, a in pairs}
    for before, after in pairs:
        assert_contract_one(before, after)
        refs_b = [
            e.value for e in before.iterall() if e.keyword == "ReferencedSOPInstanceUID"
        ]
        refs_a = [
            e.value for e in after.iterall() if e.keyword == "ReferencedSOPInstanceUID"
        ]
        assert [mapping.get(r, "?") for r in refs_b] == [
            r if r in mapping.values() else "?" for r in refs_a
        ]
        assert after.PatientID == _expected_pseudonym(key, before.PatientID)


def test_cli_deid(tmp_path: Path, key: CentreKey) -> None:
    import json

    from typer.testing import CliRunner

    from etl.deid.keys import write_key
    from rtcohort.cli import app

    write_linked_set(tmp_path / "in" / "a", "P1-0042", "Doe^Jane", n_slices=2)
    (tmp_path / "in" / "a" / "junk.dcm").write_bytes(b"\x00" * 10)
    key_file = write_key(key, tmp_path / "k.key")
    runner = CliRunner()
    args = [
        "deid",
        str(tmp_path / "in"),
        str(tmp_path / "out"),
        "--key-file",
        str(key_file),
    ]
    done = runner.invoke(
        app, [*args, "--centre", "AMS01", "--report", str(tmp_path / "r.json")]
    )
    assert done.exit_code == 0, done.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"] == {"pseudonymised": 5, "quarantined": 1}
    assert report["quarantined"][0]["file"] == "a/junk.dcm"
    assert sorted(p.name for p in (tmp_path / "out" / "a").iterdir()) == [
        "CT_0000.dcm",
        "CT_0001.dcm",
        "RD.dcm",
        "RP.dcm",
        "RS.dcm",
    ]
    wrong = runner.invoke(app, [*args, "--centre", "RTM02"])
    assert wrong.exit_code != 0
    assert "belongs to centre AMS01" in wrong.output
    missing = runner.invoke(
        app, [*args[:-1], str(tmp_path / "none.key"), "--centre", "AMS01"]
    )
    assert missing.exit_code != 0
    assert "not found" in missing.output
