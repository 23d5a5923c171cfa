"""Indexing headers and resolving RTDOSE -> RTPLAN -> RTSTRUCT -> CT."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from etl.dicom.index import DoseRole, index_bytes, index_file, resolve
from tests.etl.ingest_corpus import bare_dataset_bytes, edit, write_patient


@pytest.fixture(scope="module")
def two_patients(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    root = tmp_path_factory.mktemp("idx")
    a = write_patient(root / "a", "IDX-A", 11)
    b = write_patient(root / "b", "IDX-B", 12)
    return root, a, b


def _index(folder: Path) -> list:
    return [index_file(p) for p in sorted(folder.rglob("*.dcm"))]


def test_header_fields(two_patients: tuple[Path, dict, dict]) -> None:
    root, truth, _ = two_patients
    dose = index_file(root / "a" / "RTDOSE.dcm")
    assert dose.modality == "RTDOSE"
    assert dose.patient_id == "IDX-A"
    assert dose.referenced_plan_uids == (truth["uids"]["rtplan_sop_instance_uid"],)
    assert dose.dose_summation_type == "PLAN"
    ss = index_file(root / "a" / "RTSTRUCT.dcm")
    assert ss.roi_names == ("BODY", "Sydän", "Lunga vä", "PTV")
    assert ss.empty_roi_names == ()
    assert len(ss.referenced_image_uids) == len(truth["files"]["ct"])
    ct = index_file(root / "a" / "CT_0001.dcm")
    assert ct.slice_position_mm is not None


def test_two_patients_in_one_folder_resolve_apart(
    two_patients: tuple[Path, dict, dict],
) -> None:
    root, a, b = two_patients
    result = resolve(_index(root))
    assert len(result.datasets) == 2
    by_patient = {d.patient_id: d for d in result.datasets}
    for pid, truth in (("IDX-A", a), ("IDX-B", b)):
        ds = by_patient[pid]
        assert ds.role is DoseRole.PLAN
        assert [p.sop_instance_uid for p in ds.plans] == [
            truth["uids"]["rtplan_sop_instance_uid"]
        ]
        assert ds.structure_set is not None
        assert (
            ds.structure_set.sop_instance_uid
            == truth["uids"]["rtstruct_sop_instance_uid"]
        )
        assert len(ds.ct) == len(truth["files"]["ct"])
        assert {o.patient_id for o in ds.members()} == {pid}
    assert result.orphans == []


def test_file_without_part10_header_is_indexed(
    two_patients: tuple[Path, dict, dict],
) -> None:
    root, truth, _ = two_patients
    obj = index_bytes(bare_dataset_bytes(root / "a" / "RTPLAN.dcm"), "bare", "0" * 64)
    assert obj.sop_instance_uid == truth["uids"]["rtplan_sop_instance_uid"]
    assert obj.modality == "RTPLAN"


def test_missing_plan_pairs_by_frame_of_reference(tmp_path: Path) -> None:
    truth = write_patient(tmp_path, "IDX-C", 13)
    (tmp_path / "RTPLAN.dcm").unlink()
    ds = resolve(_index(tmp_path)).datasets[0]
    assert ds.plans == []
    assert ds.missing_plan_uids == [truth["uids"]["rtplan_sop_instance_uid"]]
    assert ds.structure_set is not None  # the only structure set in its frame


def test_missing_structure_set_and_orphans(tmp_path: Path) -> None:
    write_patient(tmp_path, "IDX-D", 14)
    (tmp_path / "RTSTRUCT.dcm").unlink()
    result = resolve(_index(tmp_path))
    assert result.datasets[0].structure_set is None
    assert result.datasets[0].ct == []
    assert {o.modality for o in result.orphans} == {"CT"}


def test_beam_doses_and_plan_sums_are_recognised(tmp_path: Path) -> None:
    truth = write_patient(tmp_path, "IDX-E", 15)
    beam = tmp_path / "RTDOSE_beam1.dcm"
    shutil.copy(tmp_path / "RTDOSE.dcm", beam)
    edit(beam, SOPInstanceUID=str(generate_uid()), DoseSummationType="BEAM")
    total = tmp_path / "RTDOSE_sum.dcm"
    shutil.copy(tmp_path / "RTDOSE.dcm", total)
    edit(total, SOPInstanceUID=str(generate_uid()), DoseSummationType="MULTI_PLAN")
    result = resolve(_index(tmp_path))
    roles = sorted(d.role.value for d in result.datasets)
    assert roles == ["beam", "plan", "plan-sum"]
    # every dose keeps its own object: nothing mixed up
    assert len({d.dose.sop_instance_uid for d in result.datasets}) == 3
    assert {d.course_key for d in result.datasets} == {
        truth["uids"]["rtplan_sop_instance_uid"]
    }


def test_identical_copies_count_once(tmp_path: Path) -> None:
    write_patient(tmp_path / "x", "IDX-F", 16)
    shutil.copytree(tmp_path / "x", tmp_path / "y")
    objects = _index(tmp_path)
    result = resolve(objects)
    assert len(result.datasets) == 1
    assert len(result.duplicates) == len(objects) // 2
