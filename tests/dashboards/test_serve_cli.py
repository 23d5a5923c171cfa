"""`rtcohort serve`: the command line it runs and its refusals (the server itself runs
in the browser tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcohort.cli import app
from rtcohort.cli.serve import server_command, server_env


def test_server_command_binds_address_port_headless() -> None:
    cmd = server_command(8642, "127.0.0.1")
    assert cmd[1:4] == ["-m", "dashboards.launch", "run"]
    assert Path(cmd[4]).name == "app.py" and Path(cmd[4]).parent.name == "dashboards"
    pairs = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert pairs["--server.address"] == "127.0.0.1"
    assert pairs["--server.port"] == "8642"
    assert pairs["--server.headless"] == "true"


def test_server_env_passes_the_key_dir(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    assert env["RTCOHORT_KEY_DIR"] == str(tmp_path.resolve())
    assert str(Path(__file__).resolve().parents[2]) in env["PYTHONPATH"].split(":")


def test_serve_refuses_a_missing_key_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite'}")
    result = CliRunner().invoke(app, ["serve", "--key-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "--key-dir" in result.output and "not a folder" in result.output


def test_sigterm_stops_the_streamlit_child(tmp_path: Path) -> None:
    """A service manager stops `rtcohort serve` with SIGTERM: no server is left."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "RTCOHORT_DATA_DIR": str(tmp_path),
           "RTCOHORT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}"}  # fmt: skip
    serve = subprocess.Popen(
        [sys.executable, "-m", "rtcohort.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ):
                    break
            except OSError:
                assert serve.poll() is None, "rtcohort serve ended early"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        children = Path(f"/proc/{serve.pid}/task/{serve.pid}/children")
        (child,) = [int(p) for p in children.read_text().split()]
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) is not None
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        status = Path(f"/proc/{child}/status")
        # gone, or a zombie waiting for init to reap it
        assert not status.exists() or "State:\tZ" in status.read_text()
    finally:
        if serve.poll() is None:
            serve.kill()


def test_launcher_preloads_every_page_and_hands_over_to_streamlit() -> None:
    import subprocess
    import sys

    from dashboards.launch import preload_pages

    pages = Path(__file__).resolve().parents[2] / "dashboards" / "pages"
    expected = {f"dashboards.pages.{p.stem}" for p in pages.glob("*.py")} - {
        "dashboards.pages.__init__"
    }
    assert set(preload_pages()) == expected
    assert expected <= set(sys.modules)
    done = subprocess.run(
        [sys.executable, "-m", "dashboards.launch", "version"],
        capture_output=True, text=True, timeout=120, check=True,
        env=server_env(None),
    )  # fmt: skip
    assert done.stdout.startswith("Streamlit, version ")


def test_startup_objects_are_frozen_out_of_the_collector() -> None:
    import gc

    from dashboards.launch import freeze_startup_objects

    try:
        marker = object.__new__(type("Marker", (), {}))
        frozen = freeze_startup_objects()
        assert frozen == gc.get_freeze_count() > 1000
        assert not any(o is marker for o in gc.get_objects())  # no longer tracked
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
