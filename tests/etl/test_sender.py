"""The C-STORE sender (etl.arrive.sender) against the receiver on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from etl.arrive.inbox import INDEX_NAME, Inbox
from etl.arrive.receiver import Receiver
from etl.arrive.sender import SendError, send_files
from tests.etl.deid_sets import write_linked_set

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("send")
    write_linked_set(folder, "P1-0042", "Doe^Jane", n_slices=3)
    return sorted(folder.rglob("*.dcm"))


@pytest.mark.parametrize("associations", [1, 3])
def test_every_file_arrives_unchanged(
    linked: list[Path], tmp_path: Path, associations: int
) -> None:
    node = Receiver(Inbox(tmp_path / "inbox"), port=0, allowed_callers=["TPS"])
    node.start()
    seen: list[tuple[int, int]] = []
    try:
        summary = send_files(
            linked, host=HOST, port=node.port, called_ae="RTCOHORT",
            calling_ae="TPS", associations=associations,
            progress=lambda d, n: seen.append((d, n)),
        )  # fmt: skip
    finally:
        node.stop()
    assert (summary.sent, summary.failed) == (len(linked), [])
    assert sorted(d for d, _ in seen) == list(range(1, len(linked) + 1))
    records = [
        json.loads(line)
        for line in (tmp_path / "inbox" / INDEX_NAME).read_text().splitlines()
    ]
    assert {r["caller"] for r in records} == {"TPS"}
    # the receiver rebuilds the file meta; the data sets are the ones sent
    stored = {
        r["sop_instance_uid"]: pydicom.dcmread(tmp_path / "inbox" / r["file"])
        for r in records
    }
    for path in linked:
        sent = pydicom.dcmread(path)
        assert stored[str(sent.SOPInstanceUID)] == sent


def test_a_refused_association_raises(linked: list[Path], tmp_path: Path) -> None:
    node = Receiver(Inbox(tmp_path / "inbox"), port=0, allowed_callers=["TPS"])
    node.start()
    try:
        with pytest.raises(SendError, match="refused the association"):
            send_files(linked, host=HOST, port=node.port, calling_ae="STRANGER")
    finally:
        node.stop()
    assert not list((tmp_path / "inbox").rglob("*.dcm"))


def test_nothing_to_send_opens_no_association() -> None:
    assert send_files([], host=HOST, port=1).sent == 0
