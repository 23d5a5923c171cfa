"""The import on a Dask cluster (a 2-worker LocalCluster on loopback), both backends.

The same phantom patients are imported in this process and through the scheduler; the
databases must hold the same rows (surrogate ids, which follow the order datasets
finish in, are replaced by the natural keys they stand for). A worker killed while it
computes a dataset loses that dataset for the run, writes nothing of it, and the next
run loads exactly the missing ones.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pytest
from distributed import Client, LocalCluster, WorkerPlugin
from typer.testing import CliRunner

from etl.errors import SchedulerError
from etl.ingest.executor import DaskCluster, open_executor
from etl.ingest.run import ImportSummary, run_import
from tests.etl.ingest_corpus import write_patient
from tests.etl.ingest_db import Db, contents, make_db

N_PATIENTS = 3


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # a task whose worker dies once is given up at once (the default retries 3 times)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        )
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def patients(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dask_patients")
    for n in range(N_PATIENTS):
        write_patient(root / f"p{n}", f"DSK-{n}", 501 + n)
        (root / f"p{n}" / "truth.json").unlink(missing_ok=True)
    return root


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def reference(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    patients: Path,
) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """The backend, and the contents after an in-process import of the patients."""
    for db in make_db(request, tmp_path_factory.mktemp("inproc")):
        summary = run_import(db.factory, [patients], db.options())
        assert (summary.loaded, summary.lost) == (N_PATIENTS, 0)
        yield request.param, contents(db)


@pytest.fixture
def dask_db(
    request: pytest.FixtureRequest, reference: tuple[str, Any], tmp_path: Path
) -> Iterator[Db]:
    """A fresh database of the reference's backend."""
    yield from make_db(request, tmp_path, reference[0])


class KillOnce(WorkerPlugin):
    """Kills the worker process that starts the first compute job (marker file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing" or not str(key).startswith("compute-"):
            return
        try:
            os.remove(self.marker)  # only one worker wins the marker
        except FileNotFoundError:
            return
        os._exit(1)


def _dask_import(db: Db, patients: Path, cluster: LocalCluster) -> ImportSummary:
    return run_import(
        db.factory, [patients], db.options(scheduler=cluster.scheduler_address)
    )


def test_dask_import_writes_what_the_in_process_import_writes(
    reference: tuple[str, dict[str, list[str]]],
    dask_db: Db,
    patients: Path,
    cluster: LocalCluster,
) -> None:
    first = _dask_import(dask_db, patients, cluster)
    assert (first.loaded, first.lost, first.datasets_held) == (N_PATIENTS, 0, 0)
    assert first.files == sum(1 for _ in patients.rglob("*.dcm"))
    got = contents(dask_db)
    assert got["dvh"] and len(got["person"]) == N_PATIENTS
    assert got == reference[1]
    again = _dask_import(dask_db, patients, cluster)  # idempotent as in-process
    assert (again.loaded, again.unchanged) == (0, N_PATIENTS)
    assert contents(dask_db) == reference[1]


def test_a_killed_worker_loses_nothing_and_a_rerun_loads_only_the_missing(
    reference: tuple[str, dict[str, list[str]]],
    dask_db: Db,
    patients: Path,
    cluster: LocalCluster,
    tmp_path: Path,
) -> None:
    marker = tmp_path / "kill-the-next-compute"
    marker.touch()
    name = f"kill-once-{uuid.uuid4().hex[:6]}"
    with Client(cluster) as client:
        client.register_plugin(KillOnce(str(marker)), name=name)
        try:
            first = _dask_import(dask_db, patients, cluster)
        finally:
            client.unregister_worker_plugin(name)
    assert not marker.exists()  # a worker died
    # the jobs on the dead worker are lost (not half-written); the others loaded
    assert first.lost >= 1
    assert first.loaded + first.lost == N_PATIENTS
    assert len(contents(dask_db)["ingest_dataset"]) == first.loaded

    second = _dask_import(dask_db, patients, cluster)
    assert (second.loaded, second.unchanged, second.lost) == (
        first.lost,
        first.loaded,
        0,
    )
    assert contents(dask_db) == reference[1]  # no duplicates, nothing missing


def test_executor_refuses_a_bad_or_unreachable_scheduler() -> None:
    with pytest.raises(SchedulerError, match="localhost:8786"):
        open_executor(scheduler="localhost:8786")  # no scheme
    with pytest.raises(ValueError, match="not both"):
        open_executor(workers=2, scheduler="tcp://127.0.0.1:8786")
    port = _closed_port()
    with pytest.raises(SchedulerError, match=f"tcp://127.0.0.1:{port}"):
        DaskCluster(f"tcp://127.0.0.1:{port}", timeout_s=1.0)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- through `rtcohort import --scheduler` ---------------------------------------

runner = CliRunner()


@pytest.fixture
def env(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from rtcohort.cli import app
    from rtcohort.settings import get_settings

    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "correct horse battery")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    get_settings.cache_clear()
    key = str(tmp_path / "k.key")
    for args in (["db", "upgrade"], ["centre", "add", "CLI01"],
                 ["keys", "new", "--centre", "CLI01", "--out", key]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return tmp_path


def _cli(args: list[str]) -> tuple[int, str]:
    from rtcohort.cli import app

    result = runner.invoke(app, args)
    return result.exit_code, result.output


@pytest.mark.parametrize("fresh_url", ["sqlite"], indirect=True)  # writes: as above
def test_cli_import_on_the_cluster_and_bad_schedulers(
    env: Path, cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = str(env / "k.key")
    for n in range(2):
        write_patient(env / "in" / f"p{n}", f"CLD-{n}", 601 + n)
        code, out = _cli(["consent", "record", f"CLD-{n}", "--centre", "CLI01",
                          "--key-file", key, "--state", "consented",
                          "--year-of-birth", "1950", "--sex", "F"])  # fmt: skip
        assert code == 0, out
    base = ["import", str(env / "in"), "--centre", "CLI01", "--key-file", key]

    code, out = _cli([*base, "--scheduler", cluster.scheduler_address])
    assert code == 0, out
    assert "datasets loaded 2, unchanged 0, held 0" in out
    code, out = _cli([*base, "--scheduler", cluster.scheduler_address])
    assert (code, "datasets loaded 0, unchanged 2" in out) == (0, True), out

    monkeypatch.setattr("etl.ingest.executor.CONNECT_TIMEOUT_S", 1.0)
    port = _closed_port()
    code, out = _cli([*base, "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert code == 2
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in out
    code, out = _cli([*base, "--scheduler", "127.0.0.1:8786"])
    assert code == 2 and "'127.0.0.1:8786': expected tcp://HOST:PORT" in out
    code, out = _cli([*base, "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"])
    assert code == 2 and "not both" in out
