"""Where the CPU-heavy stages of an import run: here, in a process pool, or on Dask.

The *prepare* stage (read, check, pseudonymise, index one file) and the *compute*
stage (read one dataset, DVHs, checks) are pure functions of files and keys that
return picklable results (:func:`etl.ingest.prepare.prepare_file`,
:func:`etl.ingest.compute.compute_dataset`). An :class:`Executor` maps one over its
jobs and yields the results as they finish; the caller (:func:`etl.ingest.run.
run_import`) writes them to the database in its own process, one transaction per
dataset. So whichever executor runs the jobs, the database sees the same writes.

- :class:`InProcess` runs the jobs one after another (the default);
- :class:`ProcessPool` runs them in ``--workers`` local processes;
- :class:`DaskCluster` submits them to a Dask distributed scheduler
  (``--scheduler tcp://HOST:PORT``). The workers must see the import folder, the file
  store and the quarantine folder at the same paths (a shared file system), and run
  the same rtcohort version. The centre key travels with the jobs: run the cluster
  inside the centre, on a trusted network or with ``tls://`` and Dask's security
  settings.

A job whose worker died more often than the scheduler allows
(``distributed.scheduler.allowed-failures``) comes back as :class:`Lost`: it wrote
nothing to the database, and the next import loads it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from etl.errors import SchedulerError

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "BATCH",
    "CONNECT_TIMEOUT_S",
    "DaskCluster",
    "Executor",
    "InProcess",
    "Lost",
    "ProcessPool",
    "check_scheduler_address",
    "open_executor",
]

#: Seconds to wait for the scheduler to answer and to have at least one worker.
CONNECT_TIMEOUT_S = 10.0
#: Items per Dask task by stage (other stages: 1).
BATCH = {"prepare": 16, "compute": 1}
_SCHEMES = ("tcp", "tls")


@dataclass(frozen=True)
class Lost:
    """A job the cluster gave up on because its workers died; nothing was written."""

    item: object
    reason: str


class Executor(Protocol):
    """Maps a job function over items; yields results (or :class:`Lost`) as they end."""

    def map(
        self,
        fn: Callable[..., object],
        items: Sequence[object],
        *args: object,
        stage: str,
    ) -> Iterator[object]:
        """Yield ``fn(item, *args)`` for every item, in the order the jobs finish."""
        ...

    def close(self) -> None:
        """Release the processes or the connection."""
        ...


@dataclass(frozen=True)
class _Job:
    """``fn(item, *args)`` for a batch of items as one picklable callable."""

    fn: Callable[..., object]
    args: tuple[object, ...]

    def __call__(self, batch: Sequence[object]) -> list[object]:
        return [self.fn(item, *self.args) for item in batch]


class InProcess:
    """Runs every job in this process, in order."""

    def map(
        self,
        fn: Callable[..., object],
        items: Sequence[object],
        *args: object,
        stage: str,
    ) -> Iterator[object]:
        """Yield ``fn(item, *args)`` for every item, in order."""
        del stage
        for item in items:
            yield fn(item, *args)

    def close(self) -> None:
        """Nothing to release."""


class ProcessPool:
    """Runs the jobs in ``workers`` local processes (spawned, not forked)."""

    def __init__(self, workers: int) -> None:
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("spawn")
        )

    def map(
        self,
        fn: Callable[..., object],
        items: Sequence[object],
        *args: object,
        stage: str,
    ) -> Iterator[object]:
        """Yield the results as the processes finish them."""
        del stage
        futures: list[Future[object]] = [
            self.pool.submit(fn, item, *args) for item in items
        ]
        for fut in as_completed(futures):
            yield fut.result()

    def close(self) -> None:
        """Stop the processes; jobs not started are cancelled."""
        self.pool.shutdown(cancel_futures=True)


def check_scheduler_address(address: str) -> str:
    """Return ``address`` when it reads ``tcp://HOST:PORT`` (or ``tls://``).

    Raises
    ------
    SchedulerError
        The address names no scheme, host or port.
    """
    try:
        parts = urlsplit(address.strip())
        port = parts.port
    except ValueError:
        port = None
        parts = urlsplit("")
    if parts.scheme not in _SCHEMES or not parts.hostname or port is None:
        raise SchedulerError(
            f"Dask scheduler address {address!r}: expected tcp://HOST:PORT"
        )
    return address.strip()


class DaskCluster:
    """Submits the jobs to the Dask scheduler at ``address``.

    Parameters
    ----------
    address
        ``tcp://HOST:PORT`` (or ``tls://HOST:PORT``) of a running scheduler.
    timeout_s
        How long to wait for the scheduler and for its first worker.
    batch
        Items per Dask task by stage (default :data:`BATCH`): files are light, so
        they go in batches that keep the scheduler's per-task overhead small; each
        dataset is a task of its own, so a dead worker loses as little as possible.

    Raises
    ------
    SchedulerError
        Malformed address, scheduler unreachable or without workers (the message
        names the address).
    """

    def __init__(
        self,
        address: str,
        timeout_s: float | None = None,
        batch: dict[str, int] | None = None,
    ) -> None:
        from distributed import Client

        self.address = check_scheduler_address(address)
        self.batch = dict(BATCH if batch is None else batch)
        wait = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
        try:
            self.client: Client = Client(
                self.address, timeout=wait, set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(
                f"cannot reach the Dask scheduler at {self.address} "
                f"(waited {wait:g} s): {exc}"
            ) from None
        try:
            self.client.wait_for_workers(1, timeout=wait)
        except (OSError, TimeoutError) as exc:
            self.client.close()
            raise SchedulerError(
                f"the Dask scheduler at {self.address} has no workers "
                f"(waited {wait:g} s): {exc}"
            ) from None
        self._run = uuid.uuid4().hex[:8]

    def map(
        self,
        fn: Callable[..., object],
        items: Sequence[object],
        *args: object,
        stage: str,
    ) -> Iterator[object]:
        """Submit every job; yield the results as workers finish them.

        A job whose workers died (``KilledWorker``) is yielded as :class:`Lost`; any
        other error of a job is raised here, as in this process.
        """
        from distributed import KilledWorker, as_completed

        size = self.batch.get(stage, 1)
        batches = [items[i : i + size] for i in range(0, len(items), size)]
        if not batches:
            return
        keys = [f"{stage}-{n}-{self._run}" for n in range(len(batches))]
        futures = self.client.map(_Job(fn, args), batches, key=keys, pure=False)
        index = {f.key: n for n, f in enumerate(futures)}
        pending = set(futures)
        done: Any = as_completed(futures, loop=self.client.loop)
        try:
            for fut in done:
                pending.discard(fut)
                try:
                    results: list[object] = fut.result()
                except KilledWorker as exc:
                    results = [Lost(i, str(exc)) for i in batches[index[fut.key]]]
                fut.release()
                yield from results
        finally:
            if pending:  # stopped early (an error, an interrupt): drop the rest
                self.client.cancel(list(pending))

    def close(self) -> None:
        """Close the connection (the cluster keeps running)."""
        self.client.close()


def open_executor(workers: int = 1, scheduler: str | None = None) -> Executor:
    """Return the executor for ``--workers`` / ``--scheduler`` (one, not both).

    Raises
    ------
    SchedulerError
        The scheduler is malformed, unreachable or has no workers.
    ValueError
        ``workers`` < 1, or both a pool and a scheduler asked for.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if scheduler is not None:
        if workers > 1:
            raise ValueError("give --workers or --scheduler, not both")
        return DaskCluster(scheduler)
    return ProcessPool(workers) if workers > 1 else InProcess()
