"""The C-STORE receiver on loopback, with dcmtk's storescu and with pynetdicom."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom.sop_class import Verification

from etl.arrive import inbox as inbox_module
from etl.arrive.inbox import INDEX_NAME, Inbox
from etl.arrive.receiver import Receiver
from etl.deid.codec import build_file_meta
from etl.deid.keys import CentreKey, write_key
from tests.etl.deid_sets import write_linked_set

HOST = "127.0.0.1"
STORESCU = shutil.which("storescu")
# .ci/run installs dcmtk and sets RTCOHORT_REQUIRE_PEERS=1: a missing peer then fails
if STORESCU is None and os.environ.get("RTCOHORT_REQUIRE_PEERS") == "1":
    raise RuntimeError("dcmtk storescu is required (RTCOHORT_REQUIRE_PEERS=1)")
needs_dcmtk = pytest.mark.skipif(
    STORESCU is None, reason="dcmtk storescu not installed"
)


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("send")
    write_linked_set(folder, "P1-0042", "Doe^Jane", n_slices=3)
    return folder


def _start(tmp_path: Path, **kwargs: object) -> Receiver:
    node = Receiver(
        Inbox(tmp_path / "inbox"), port=0, allowed_callers=["TPS"], **kwargs
    )
    node.start()
    return node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Receiver]:
    receiver = _start(tmp_path)
    yield receiver
    receiver.stop()


def _scu(calling: str = "TPS") -> AE:
    ae = AE(ae_title=calling)
    ae.requested_contexts = StoragePresentationContexts[:120]
    ae.add_requested_context(Verification)
    return ae


def _send(
    port: int,
    datasets: list[pydicom.Dataset | str],
    calling: str = "TPS",
    called: str = "RTCOHORT",
) -> list[int]:
    assoc = _scu(calling).associate(HOST, port, ae_title=called)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def _stored(node: Receiver) -> list[Path]:
    return sorted(node.inbox.root.rglob("*.dcm"))


@needs_dcmtk
def test_storescu_sends_linked_set(node: Receiver, linked: Path) -> None:
    files = sorted(linked.glob("*.dcm"))
    run = subprocess.run(
        [
            STORESCU,
            "-aet",
            "TPS",
            "-aec",
            "RTCOHORT",
            HOST,
            str(node.port),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    stored = _stored(node)
    assert len(stored) == len(files)
    for source in files:
        ds = pydicom.dcmread(source)
        target = node.inbox.root / ds.StudyInstanceUID / f"{ds.SOPInstanceUID}.dcm"
        got = pydicom.dcmread(target)
        assert got.PatientID == ds.PatientID  # no --deid: stored as sent
        assert got.SOPInstanceUID == ds.SOPInstanceUID
        assert got.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


@needs_dcmtk
def test_storescu_file_without_part10_header(node: Receiver) -> None:
    bare = get_testdata_file("rtstruct.dcm")  # no preamble, no file meta
    run = subprocess.run(
        [STORESCU, "-aet", "TPS", "-aec", "RTCOHORT", HOST, str(node.port), bare],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert len(_stored(node)) == 1


@needs_dcmtk
def test_storescu_unknown_caller_refused(node: Receiver) -> None:
    run = subprocess.run(
        [
            STORESCU,
            "-aet",
            "STRANGER",
            "-aec",
            "RTCOHORT",
            HOST,
            str(node.port),
            get_testdata_file("rtplan.dcm"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0
    assert "Calling AE Title Not Recognized" in run.stderr
    assert _stored(node) == []


def test_echo_and_wrong_called_title(node: Receiver) -> None:
    assoc = _scu().associate(HOST, node.port, ae_title="RTCOHORT")
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0
    assoc.release()
    wrong = _scu().associate(HOST, node.port, ae_title="OTHERNODE")
    assert wrong.is_rejected
    stranger = _scu("STRANGER").associate(HOST, node.port, ae_title="RTCOHORT")
    assert stranger.is_rejected


def test_identical_resend_stored_once_and_new_version_flagged(node: Receiver) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert _send(node.port, [ds, ds]) == [0, 0]
    assert _send(node.port, [ds]) == [0]
    assert len(_stored(node)) == 1
    changed = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    changed.SeriesDescription = "re-exported"
    assert _send(node.port, [changed, changed]) == [0, 0]
    folder = node.inbox.root / ds.StudyInstanceUID
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{ds.SOPInstanceUID}.dcm", f"{ds.SOPInstanceUID}.v2.dcm"]
    assert (
        pydicom.dcmread(folder / f"{ds.SOPInstanceUID}.v2.dcm").SeriesDescription
        == "re-exported"
    )
    index = [
        json.loads(x) for x in (node.inbox.root / INDEX_NAME).read_text().splitlines()
    ]
    assert [r["status"] for r in index] == ["stored", "new-version"]
    assert not [
        p
        for p in node.inbox.root.rglob("*")
        if p.is_file() and p.suffix == ".dcm" and p.parent == node.inbox.root
    ]


def test_disk_full_gives_a700_and_leaves_nothing(
    node: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = pydicom.dcmread(get_testdata_file("rtplan.dcm"))
    assert _send(node.port, [first]) == [0]
    kept = _stored(node)[0].read_bytes()

    def full(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(inbox_module, "_write_all", full)
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert _send(node.port, [ct]) == [0xA700]
    files = [p for p in node.inbox.root.rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == sorted([_stored(node)[0].name, INDEX_NAME])
    assert _stored(node)[0].read_bytes() == kept
    monkeypatch.undo()
    assert _send(node.port, [ct]) == [0]  # space is back: stored


def test_undecodable_and_unsafe_uids_quarantined(
    node: Receiver, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.dcm"
    uid = "1.2.3.4.5"
    ct = "1.2.840.10008.5.1.4.1.1.2"
    body = (
        b"\x08\x00\x16\x00UI\x1a\x00"
        + ct.encode()
        + b"\x00"
        + b"\x08\x00\x18\x00UI\x0a\x00"
        + uid.encode()
        + b"\x00"
        + b"\x10\x00\x10\x00PN\x40\x00Doe^"  # declares 64 bytes, holds 4
    )
    broken.write_bytes(build_file_meta(ct, uid, "1.2.840.10008.1.2.1") + body)
    evil = pydicom.dcmread(get_testdata_file("rtplan.dcm"))
    evil.StudyInstanceUID = "../../escape"
    assert _send(node.port, [str(broken), evil]) == [0xC000, 0xC000]
    assert _stored(node) == []
    reasons = sorted(node.inbox.quarantine_dir.glob("*.reason.json"))
    assert len(reasons) == 2
    text = " ".join(json.loads(p.read_text())["reason"] for p in reasons)
    assert "not a valid UID" in text
    assert "truncated" in text or "no StudyInstanceUID" in text
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("attribute", ["StudyInstanceUID", "SOPInstanceUID"])
def test_deid_refuses_uids_that_are_not_uids(tmp_path: Path, attribute: str) -> None:
    """With --deid the received UIDs are checked before they are remapped (issue 13)."""
    receiver = _start(tmp_path, key=CentreKey("AMS01", bytes(range(32))))
    evil = pydicom.dcmread(get_testdata_file("rtplan.dcm"))
    setattr(evil, attribute, "1.2..3")
    try:
        assert _send(receiver.port, [evil]) == [0xC000]
    finally:
        receiver.stop()
    assert _stored(receiver) == []
    reasons = list(receiver.inbox.quarantine_dir.glob("*.reason.json"))
    assert len(reasons) == 1
    reason = json.loads(reasons[0].read_text())["reason"]
    assert f"{attribute} '1.2..3' is not a valid UID" in reason


def test_deid_on_arrival(tmp_path: Path, linked: Path) -> None:
    key = CentreKey("AMS01", bytes(range(32)))
    receiver = _start(tmp_path, key=key)
    try:
        datasets = [pydicom.dcmread(p) for p in sorted(linked.glob("*.dcm"))]
        burned = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        burned.BurnedInAnnotation = "YES"
        statuses = _send(receiver.port, [*datasets, burned])
    finally:
        receiver.stop()
    assert statuses == [0] * len(datasets) + [0xC000]
    stored = _stored(receiver)
    assert len(stored) == len(datasets)
    for path in receiver.inbox.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for planted in (b"Doe", b"P1-0042", b"Springfield", b"CompressedSamples"):
                assert planted not in data, (path.name, planted)
    originals = {ds.SOPInstanceUID for ds in datasets}
    for path in stored:
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert path.name == f"{ds.SOPInstanceUID}.dcm"
        assert path.parent.name == ds.StudyInstanceUID
        assert ds.SOPInstanceUID not in originals
    held = list(receiver.inbox.quarantine_dir.glob("*.reason.json"))
    assert len(held) == 1
    assert "BurnedInAnnotation" in held[0].read_text()
    assert receiver.inbox.quarantine_dir.parent == receiver.inbox.root.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def test_cli_receive_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    key_file = write_key(CentreKey("AMS01", bytes(32)), tmp_path / "k.key")
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "rtcohort.cli",
        "receive",
        "--port",
        str(port),
        "--ae-title",
        "RTCOHORT",
        "--inbox",
        str(tmp_path / "inbox"),
        "--allowed-caller",
        "TPS",
        "--deid",
        "--centre",
        "AMS01",
        "--key-file",
        str(key_file),
    ]
    code = "from rtcohort.cli import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *cmd[3:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            assoc = _scu().associate(HOST, port, ae_title="RTCOHORT")
            if assoc.is_established:
                break
            time.sleep(0.1)
        assert assoc.is_established
        ds = pydicom.dcmread(get_testdata_file("rtplan.dcm"))
        assert int(assoc.send_c_store(ds).Status) == 0
        assoc.release()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "receiver stopped" in out
    assert not list((tmp_path / "inbox").rglob("*.partial"))
    assert len(list((tmp_path / "inbox").rglob("*.dcm"))) == 1


def test_cli_receive_rejects_wrong_centre_key(tmp_path: Path) -> None:
    key_file = write_key(CentreKey("AMS01", bytes(32)), tmp_path / "k.key")
    code = "from rtcohort.cli import main; main()"
    args = [
        "receive",
        "--inbox",
        str(tmp_path / "in"),
        "--deid",
        "--centre",
        "RTM02",
        "--key-file",
        str(key_file),
    ]
    run = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0
    assert "belongs to centre AMS01" in run.stderr
    assert "Traceback" not in run.stderr


def test_inbox_io_bytes_roundtrip(tmp_path: Path) -> None:
    box = Inbox(tmp_path / "box")
    (tmp_path / "box" / "1.2").mkdir()
    stale = tmp_path / "box" / "1.2" / ".x.dcm.abc.partial"
    stale.write_bytes(b"half")
    box = Inbox(tmp_path / "box")
    assert not stale.exists()
    buffer = io.BytesIO(b"x" * 10)
    outcome = box.store(buffer.getvalue(), "1.2", "1.2.3")
    assert outcome.path.read_bytes() == b"x" * 10
    assert outcome.version == 1
