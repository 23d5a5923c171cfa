"""The demo sends a centre in batches as its patients are written (send_in_batches)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from etl.arrive.sender import SendSummary
from rtcohort.demo_pipeline import send_in_batches


class _Writer:
    """Writes ``n`` patient folders one by one, ``truth.json`` last, as the simulator.

    Stands in for :class:`rtcohort.demo_pipeline.DicomWriter` (the same two methods),
    so the order of writing and sending can be controlled without phantoms.
    """

    def __init__(self, dicom: Path, n: int, pause_s: float) -> None:
        self.dicom, self.n, self.pause_s = dicom, n, pause_s
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._write)

    def _write(self) -> None:
        for i in range(self.n):
            folder = self.dicom / f"P{i:03d}"
            folder.mkdir(parents=True)
            (folder / "CT.1.dcm").write_bytes(b"")
            time.sleep(self.pause_s / 2)  # half written: no truth.json yet
            (folder / "truth.json").write_text("{}")
            time.sleep(self.pause_s / 2)
        self.done.set()

    def patients(self, centre: str) -> int:
        del centre
        return self.n

    def written(self, centre: str) -> bool:
        del centre
        return self.done.wait(0.5)


def test_every_patient_is_sent_once_in_batches_and_only_once_written(
    tmp_path: Path,
) -> None:
    dicom = tmp_path / "HUS" / "dicom"
    writer = _Writer(dicom, n=23, pause_s=0.04)
    batches: list[list[str]] = []
    ticks: list[tuple[int, int]] = []

    def deliver(folders: list[Path]) -> SendSummary:
        for f in folders:  # a folder is sent only once its truth.json is written
            assert (f / "truth.json").is_file()
        batches.append([f.name for f in folders])
        return SendSummary(sent=len(folders), failed=[(f"{folders[0]}", -1)])

    writer.thread.start()
    summary, seconds = send_in_batches(
        dicom, "HUS", writer, deliver, lambda _l, d, n: ticks.append((d, n)), batch=5
    )
    writer.thread.join()

    sent = [name for b in batches for name in b]
    assert sorted(sent) == [f"P{i:03d}" for i in range(23)]  # each once
    assert len(sent) == len(set(sent))
    assert len(batches) >= 2
    assert all(len(b) >= 5 for b in batches[:-1])
    assert summary.sent == 23
    assert len(summary.failed) == len(batches)  # refusals of every batch kept
    assert ticks[0] == (0, 23) and ticks[-1] == (23, 23)
    assert seconds >= 0.0


def test_a_centre_written_before_the_send_goes_in_one_batch(tmp_path: Path) -> None:
    dicom = tmp_path / "TAYS" / "dicom"
    writer = _Writer(dicom, n=3, pause_s=0.0)
    writer.thread.start()
    writer.thread.join()
    (dicom / "P999").mkdir()  # cut off: no truth.json, never sent
    batches: list[int] = []

    def deliver(folders: list[Path]) -> SendSummary:
        batches.append(len(folders))
        return SendSummary(sent=len(folders))

    summary, _ = send_in_batches(
        dicom, "TAYS", writer, deliver, lambda *_: None, batch=10
    )
    assert batches == [3]
    assert summary.sent == 3


def test_a_centre_with_no_patients_sends_nothing(tmp_path: Path) -> None:
    writer = _Writer(tmp_path / "KUH" / "dicom", n=0, pause_s=0.0)
    writer.thread.start()
    writer.thread.join()

    def deliver(folders: list[Path]) -> SendSummary:
        raise AssertionError(f"nothing to send, sent {folders}")

    summary, seconds = send_in_batches(
        tmp_path / "KUH" / "dicom", "KUH", writer, deliver, lambda *_: None, batch=10
    )
    assert summary.sent == 0
    assert seconds == 0.0
