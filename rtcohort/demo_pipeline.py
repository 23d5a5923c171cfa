"""The demo's pipeline: DICOM-RT written in the background, sent and imported by centre.

``rtcohort demo`` sends a centre's patients in batches as they are written and
imports the centre once all of it is sent
(:func:`cohort.simulate.files.write_dicom_files` reports each centre), while the
next centres are written: the send waits on the disk and the import's loading on the
database, so the writer's processes fill that time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session, sessionmaker

from cohort.simulate.files import written_folders
from cohort.simulate.national import NationalCohort
from etl.arrive.sender import SendSummary
from etl.deid.keys import CentreKey

if TYPE_CHECKING:
    from rtcohort.demo import DemoReport

__all__ = ["DicomWriter", "send_and_import", "send_in_batches"]

#: Seconds between looks for written patients (and checks that the writer runs).
_POLL_S = 0.5


class DicomWriter:
    """Write a cohort's DICOM-RT in a background thread; wait for a centre's.

    Parameters
    ----------
    cohort
        The simulated cohort (its centres' other files written already:
        :func:`cohort.simulate.files.write_centre_files`).
    out_dir
        The simulator's output folder.
    seed
        The UID seed of the phantoms.
    tick
        ``(done, total)`` progress of the patients written.
    workers
        Writer processes.
    """

    def __init__(
        self,
        cohort: NationalCohort,
        out_dir: Path,
        seed: int,
        tick: Callable[[int, int], None] | None = None,
        workers: int = 1,
    ) -> None:
        self._args = (cohort, out_dir, seed, tick, workers)
        self._ready = {p.centre: threading.Event() for p in cohort.patients}
        self._count = Counter(p.centre for p in cohort.patients)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="demo-writer")
        self._future: Future[None] | None = None
        self.seconds = 0.0

    def start(self) -> None:
        """Start writing (returns at once)."""
        self._future = self._thread.submit(self._write)

    def _write(self) -> None:
        from cohort.simulate.files import write_dicom_files

        cohort, out_dir, seed, tick, workers = self._args
        started = time.perf_counter()
        write_dicom_files(
            cohort, out_dir, seed=seed, progress=tick, workers=workers,
            centre_written=lambda centre: self._ready[centre].set(),
        )  # fmt: skip
        self.seconds = time.perf_counter() - started

    def patients(self, centre: str) -> int:
        """Return how many patients ``centre`` has in the cohort."""
        return self._count.get(centre, 0)

    def written(self, centre: str) -> bool:
        """Wait up to half a second for all of ``centre``'s patients; whether written.

        Raises
        ------
        RuntimeError
            The writer failed (its error chained) or ended without the centre.
        """
        if self._future is None:
            raise RuntimeError("DicomWriter.written before start")
        if centre not in self._ready:  # no patient there: nothing to write
            return True
        if self._ready[centre].wait(_POLL_S):
            return True
        if self._future.done():
            self._future.result()  # the writer's failure
            if not self._ready[centre].is_set():
                raise RuntimeError(f"simulate: no DICOM-RT written for {centre}")
        return self._ready[centre].is_set()

    def finish(self) -> float:
        """Wait for the writer to end; return its wall time (s)."""
        try:
            if self._future is not None:
                self._future.result()
        finally:
            self._thread.shutdown()
        return self.seconds


class Written(Protocol):
    """What :func:`send_in_batches` asks of a writer (:class:`DicomWriter`)."""

    def patients(self, centre: str) -> int: ...

    def written(self, centre: str) -> bool: ...


def send_in_batches(  # noqa: PLR0917
    dicom: Path,
    code: str,
    writer: Written,
    deliver: Callable[[list[Path]], SendSummary],
    tick: Callable[[str, int, int], None],
    batch: int,
) -> tuple[SendSummary, float]:
    """Send a centre's patient folders under ``dicom`` as the ``writer`` writes them.

    ``deliver`` is called with ``batch`` written, unsent folders at a time (fewer
    once the centre is written in full) until every folder is sent. Returns what
    was sent and the seconds spent sending.
    """
    total = writer.patients(code)
    sent: set[Path] = set()
    summary, seconds = SendSummary(), 0.0
    tick(f"send {code}", 0, total)
    while True:
        complete = writer.written(code)
        ready = written_folders(dicom) - sent
        if ready and (complete or len(ready) >= batch):
            t0 = time.perf_counter()
            part = deliver(sorted(ready))
            seconds += time.perf_counter() - t0
            summary.sent += part.sent
            summary.failed += part.failed
            sent |= ready
            tick(f"send {code}", len(sent), total)
        elif complete:  # all written, all sent
            return summary, seconds


def send_and_import(  # noqa: PLR0917
    factory: sessionmaker[Session],
    report: DemoReport,
    demo_dir: Path,
    keys: dict[str, tuple[Path, CentreKey]],
    username: str,
    tick: Callable[[str, int, int], None],
    writer: DicomWriter,
) -> None:
    """Send each centre's DICOM to the receiver and import its inbox.

    A centre is sent in batches of ``SEND_BATCH`` patients as the ``writer`` writes
    them (a patient is written once its ``truth.json`` is), so when the writer ends
    only its last batch is left to send; a centre is imported once all of it is
    sent, while the next centre is sent (a thread: the sender mostly waits on the
    network and the disk).
    """
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from multiprocessing import get_context

    from etl.ingest.run import run_import
    from rtcohort import demo_steps as steps
    from rtcohort.wiring import ingest_options

    sim = demo_dir / "sim"
    # a full-size demo sends from a process of its own: the sender's and the
    # receiver's threads then do not share one interpreter lock with the import
    own = steps.workers_for(report.patients) > 1
    node = ProcessPoolExecutor(1, mp_context=get_context("spawn")) if own else None

    def deliver(code: str, key: CentreKey, folders: list[Path]) -> SendSummary:
        inbox = demo_dir / "inbox" / code
        if node is None:
            return steps.deliver(code, folders, inbox, key).sent
        return node.submit(steps.deliver, code, folders, inbox, key).result().sent

    def send(code: str, key: CentreKey) -> tuple[steps.Delivery, float]:
        summary, seconds = send_in_batches(
            sim / code / "dicom", code, writer, partial(deliver, code, key), tick,
            steps.SEND_BATCH,
        )  # fmt: skip
        return steps.Delivery(code, demo_dir / "inbox" / code, summary), seconds

    codes = list(keys)
    try:
        with ThreadPoolExecutor(1) as sender:
            pending: Future[tuple[steps.Delivery, float]] = sender.submit(
                send, codes[0], keys[codes[0]][1]
            )
            for i, code in enumerate(codes):
                delivery, seconds = pending.result()
                if i + 1 < len(codes):
                    nxt = codes[i + 1]
                    pending = sender.submit(send, nxt, keys[nxt][1])
                report.seconds["send (overlapped)"] = (
                    report.seconds.get("send (overlapped)", 0.0) + seconds
                )
                report.files_sent += delivery.sent.sent
                report.files_refused += len(delivery.sent.failed)
                t0 = time.perf_counter()
                opts = ingest_options(code, keys[code][0], actor=username)
                opts.workers = steps.workers_for(report.patients // len(codes))
                opts.progress = lambda _s, d, n, c=code: tick(f"import {c}", d, n)
                summary = run_import(factory, [delivery.inbox], opts)
                report.datasets_loaded_now += summary.loaded
                report.datasets_unchanged += summary.unchanged
                report.seconds["import (overlapped)"] = (
                    report.seconds.get("import (overlapped)", 0.0)
                    + time.perf_counter()
                    - t0
                )
    finally:
        if node is not None:
            node.shutdown()
