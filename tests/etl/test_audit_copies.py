"""Audit copies: independent identities and UIDs, no collisions, reproducible."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from etl.deid.audit_copies import copy_key, write_audit_copies
from etl.deid.folder import deidentify_folder
from etl.deid.keys import CentreKey, write_key
from rtcohort.cli import app
from tests.etl.deid_sets import write_linked_set

KEY = CentreKey("AMS01", bytes(range(32)))


def _uids(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.dcm"):
        for elem in pydicom.dcmread(path).iterall():
            if elem.VR == "UI" and elem.value and "ClassUID" not in elem.keyword:
                found.setdefault(str(elem.value), set()).add(path.name)
    return found


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("audit_in")
    write_linked_set(folder / "p1", "P1-0042", "Doe^Jane", n_slices=2)
    write_linked_set(folder / "p2", "P2-0099", "Roe^Richard", n_slices=2)
    return folder


def test_copies_are_independent(source: Path, tmp_path: Path) -> None:
    report = write_audit_copies(source, tmp_path, KEY, 3)
    assert report.written == 3 * 10
    assert not report.quarantined
    source_uids = set(_uids(source))
    copies = [set(_uids(tmp_path / f"copy_{n}")) for n in (1, 2, 3)]
    for n, uids in enumerate(copies):
        assert not uids & source_uids
        for other in copies[n + 1 :]:
            assert not uids & other
    names = [
        {pydicom.dcmread(p).PatientID for p in (tmp_path / f"copy_{n}").rglob("*.dcm")}
        for n in (1, 2, 3)
    ]
    assert all(len(s) == 2 for s in names)  # two patients in every copy
    assert not names[0] & names[1]
    assert not names[1] & names[2]
    assert all(name.startswith("AMS01-A") for s in names for name in s)


def test_references_survive_in_each_copy(source: Path, tmp_path: Path) -> None:
    write_audit_copies(source, tmp_path, KEY, 2)
    for n in (1, 2):
        folder = tmp_path / f"copy_{n}" / "p1"
        rs = pydicom.dcmread(folder / "RS.dcm")
        rp = pydicom.dcmread(folder / "RP.dcm")
        rd = pydicom.dcmread(folder / "RD.dcm")
        assert (
            rd.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp.SOPInstanceUID
        )
        assert (
            rp.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
            == rs.SOPInstanceUID
        )
        cts = {pydicom.dcmread(p).SOPInstanceUID for p in folder.glob("CT_*.dcm")}
        refs = {
            c.ContourImageSequence[0].ReferencedSOPInstanceUID
            for c in rs.ROIContourSequence[0].ContourSequence
        }
        assert refs == cts


def test_copies_reproducible_and_from_pseudonymised_input(
    source: Path, tmp_path: Path
) -> None:
    write_audit_copies(source, tmp_path / "a", KEY, 1)
    deidentify_folder(source, tmp_path / "pseudo", KEY)
    write_audit_copies(source, tmp_path / "b", KEY, 1)
    again = write_audit_copies(tmp_path / "pseudo", tmp_path / "c", KEY, 1)
    assert again.written == 10
    for path in (tmp_path / "a").rglob("*.dcm"):
        assert (
            tmp_path / "b" / path.relative_to(tmp_path / "a")
        ).read_bytes() == path.read_bytes()
    assert not set(_uids(tmp_path / "c")) & set(_uids(tmp_path / "pseudo"))


def test_copy_keys_differ() -> None:
    keys = [copy_key(KEY, n) for n in range(1, 11)]
    assert len({k.secret for k in keys}) == 10
    assert KEY.secret not in {k.secret for k in keys}
    with pytest.raises(ValueError, match=r"1\.\.99"):
        copy_key(KEY, 0)


def test_cli(source: Path, tmp_path: Path) -> None:
    key_file = write_key(KEY, tmp_path / "k.key")
    result = CliRunner().invoke(
        app,
        [
            "audit-copies",
            str(source),
            str(tmp_path / "out"),
            "--copies",
            "2",
            "--key-file",
            str(key_file),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "20 written" in result.output
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 20


def test_owner_manifest_names_patients_only_under_the_key(
    source: Path, tmp_path: Path
) -> None:
    import hashlib
    import hmac

    from etl.deid import audit_owners
    from etl.deid.pseudonymise import pseudonym

    write_audit_copies(source, tmp_path, KEY, 2)
    tags: list[set[str]] = []
    for n in (1, 2):
        folder = tmp_path / f"copy_{n}"
        entries = audit_owners.owners(folder)
        assert entries is not None
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.dcm"))
        assert sorted(str(e["file"]) for e in entries) == files
        for entry in entries:
            data = (folder / str(entry["file"])).read_bytes()
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        # the tag, computed here from its definition: HMAC-SHA-512/256 of the centre
        # pseudonym under the copy key's erasure-owner/v1 sub-key, 128 bits
        sub = copy_key(KEY, n).derive("erasure-owner/v1")
        expect = {
            hmac.new(sub, pseudonym(KEY, pid).encode(), "sha512_256")
            .digest()[:16]
            .hex()
            for pid in ("P1-0042", "P2-0099")
        }
        tags.append({str(e["owner"]) for e in entries})
        assert tags[-1] == expect
        raw = (folder / audit_owners.OWNERS_NAME).read_bytes()
        assert b"P1-0042" not in raw
        assert pseudonym(KEY, "P1-0042").encode() not in raw
    assert not tags[0] & tags[1]  # the copies' manifests do not link them


def test_forget_deletes_one_patients_files(source: Path, tmp_path: Path) -> None:
    from etl.deid import audit_owners
    from etl.deid.pseudonymise import pseudonym

    write_audit_copies(source, tmp_path, KEY, 1)
    folder = tmp_path / "copy_1"
    tag = audit_owners.owner_tag(copy_key(KEY, 1), pseudonym(KEY, "P1-0042"))
    entries = audit_owners.owners(folder) or []
    mine = {str(e["sha256"]) for e in entries if e["owner"] == tag}
    assert audit_owners.forget(folder, mine) == len(mine) == 5
    assert not list((folder / "p1").rglob("*.dcm"))
    assert len(list((folder / "p2").rglob("*.dcm"))) == 5
    assert {e["owner"] for e in audit_owners.owners(folder) or []} == {
        audit_owners.owner_tag(copy_key(KEY, 1), pseudonym(KEY, "P2-0099"))
    }
