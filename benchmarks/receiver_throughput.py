"""Receiver throughput: 1,000 CT slices + an RT set in one association, two real peers.

Sends the same folder with dcmtk's ``storescu`` and with pynetdicom's ``storescu`` app
(each in its own process) to :class:`etl.arrive.receiver.Receiver` on 127.0.0.1, then
checks
that every object was stored once (no ``.vN`` versions) and prints MB/s. A third run
pseudonymises on arrival (``--deid``) with dcmtk as the peer.

    .venv/bin/python benchmarks/receiver_throughput.py [--slices 1000] [--size 512]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from deid_speed import make_files  # noqa: E402

from etl.arrive.inbox import Inbox  # noqa: E402
from etl.arrive.receiver import Receiver  # noqa: E402
from etl.deid.keys import CentreKey  # noqa: E402

WORK = HERE / "_work" / "receiver"


def make_series(folder: Path, slices: int, size: int) -> None:
    """Write `slices` CT slices of size x size int16 plus the RT set of deid_speed."""
    if folder.exists() and len(list(folder.glob("*.dcm"))) == slices + 4:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1000)
    pixels = rng.integers(-1000, 1500, size=(size, size), dtype=np.int16).tobytes()
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(slices):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = (
            study,
            series,
            frame,
        )
        ds.Modality, ds.PatientName, ds.PatientID = "CT", "Doe^Jane", "123456"
        ds.StudyDate, ds.InstanceNumber = "20240115", k + 1
        ds.ImagePositionPatient = [-250, -250, 2.0 * k]
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (
            16,
            16,
            15,
            1,
        )
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = pixels
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.save_as(folder / f"CT_{k:05d}.dcm", enforce_file_format=True)
    for label, path in make_files(WORK / "rt").items():
        shutil.copy(path, folder / f"{label}.dcm")


def _sender(peer: str, port: str, source: Path) -> list[str]:
    if peer == "dcmtk":
        return ["storescu", "-aet", "TPS", "-aec", "RTCOHORT", "+sd", "127.0.0.1", port,
                str(source)]  # fmt: skip
    return [sys.executable, "-m", "pynetdicom", "storescu", "-aet", "TPS", "-aec",
            "RTCOHORT", "127.0.0.1", port, str(source), "-r", "-v"]  # fmt: skip


def run(peer: str, source: Path, deid: bool) -> tuple[float, int, int, str]:
    """Return (seconds, files stored, versions, sender problems) for one peer."""
    inbox_dir = WORK / f"inbox_{peer}{'_deid' if deid else ''}"
    shutil.rmtree(inbox_dir, ignore_errors=True)
    shutil.rmtree(
        inbox_dir.with_name(inbox_dir.name + "-quarantine"), ignore_errors=True
    )
    key = CentreKey("BENCH", bytes(range(32))) if deid else None
    node = Receiver(Inbox(inbox_dir), port=0, allowed_callers=["TPS"], key=key)
    node.start()
    start = time.perf_counter()
    sent = subprocess.run(
        _sender(peer, str(node.port), source),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    node.stop()
    stored = list(inbox_dir.rglob("*.dcm"))
    versions = sum(1 for p in stored if ".v" in p.name)
    log = (sent.stdout + sent.stderr).splitlines()
    problems = [x for x in log if x.startswith(("E:", "W:", "F:")) or "Abort" in x]
    note = f"exit {sent.returncode}; " + "; ".join(problems[:3]) if problems else ""
    return seconds, len(stored), versions, note


def baseline(source: Path) -> float:
    """Seconds for dcmtk storescu -> dcmtk storescp (same machine, same files)."""
    target = WORK / "storescp"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    scp = subprocess.Popen(["storescp", "-od", str(target), port])
    try:
        time.sleep(1.0)
        start = time.perf_counter()
        subprocess.run(["storescu", "+sd", "127.0.0.1", port, str(source)], check=True)
        return time.perf_counter() - start
    finally:
        scp.terminate()
        scp.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--peers", default="dcmtk,pynetdicom,dcmtk+deid,storescp")
    args = parser.parse_args()
    source = WORK / f"series_{args.slices}_{args.size}"
    make_series(source, args.slices, args.size)
    expected = args.slices + 4
    print(
        f"{expected} objects: {args.slices} CT {args.size}x{args.size}"
        " + RT set (CT, RTSTRUCT, RTPLAN, RTDOSE), one association per peer"
    )
    mb = sum(p.stat().st_size for p in source.glob("*.dcm")) / 1e6
    print(f"{'peer':<26} {'MB':>7} {'s':>7} {'MB/s':>6} {'stored':>6} {'dupes':>5}")
    chosen = args.peers.split(",")
    runs = [("dcmtk", False), ("pynetdicom", False), ("dcmtk", True)]
    for peer, deid in runs:
        if f"{peer}{'+deid' if deid else ''}" not in chosen:
            continue
        seconds, stored, versions, note = run(peer, source, deid)
        label = f"{peer} -> rtcohort{' --deid' if deid else ''}"
        ok = "" if stored == expected and versions == 0 else f"  MISMATCH {note}"
        row = f"{label:<26} {mb:7.1f} {seconds:7.2f} {mb / seconds:6.1f}"
        print(f"{row} {stored:6d} {versions:5d}{ok}")
    if "storescp" in chosen and shutil.which("storescp"):
        seconds = baseline(source)
        label = "dcmtk -> dcmtk storescp"
        print(f"{label:<26} {mb:7.1f} {seconds:7.2f} {mb / seconds:6.1f}  (reference)")


if __name__ == "__main__":
    main()
