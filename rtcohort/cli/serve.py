"""`rtcohort serve`: the web app (``streamlit run dashboards/app.py``, preloaded)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from rtcohort.cli.common import fail

__all__ = ["register", "run_server", "server_command", "server_env"]

PortOpt = Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")]
AddressOpt = Annotated[
    str, typer.Option("--address", help="Address to listen on (loopback by default).")
]
KeyDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--key-dir",
        envvar="RTCOHORT_KEY_DIR",
        help="Folder of the centre keys (<CODE>.key): date offsets, contact register.",
    ),
]


def server_command(port: int, address: str) -> list[str]:
    """Return the ``streamlit run`` command line of the web app.

    Streamlit is started through :mod:`dashboards.launch`, which imports the pages
    before the server listens (the first visitor does not wait for them).

    >>> server_command(8502, "127.0.0.1")[1:4]
    ['-m', 'dashboards.launch', 'run']
    """
    import dashboards

    app = Path(dashboards.__file__).resolve().parent / "app.py"
    return [
        sys.executable, "-m", "dashboards.launch", "run", str(app),
        "--server.address", address, "--server.port", str(port),
        "--server.headless", "true", "--server.runOnSave", "false",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal", "--client.showSidebarNavigation", "false",
    ]  # fmt: skip


def server_env(key_dir: Path | None) -> dict[str, str]:
    """Return the server's environment: this one plus the resolved settings.

    ``dashboards`` does not import ``rtcohort``; it reads the database URL, data
    folder, audit files and key folder resolved here (:mod:`dashboards.config`).
    """
    import dashboards
    from rtcohort.settings import get_settings

    settings = get_settings()
    env = dict(os.environ)
    root = str(Path(dashboards.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, env.get("PYTHONPATH", "")) if p
    )
    env.update(
        RTCOHORT_DATABASE_URL=settings.resolved_database_url(),
        RTCOHORT_DATA_DIR=str(settings.data_dir.resolve()),
        RTCOHORT_AUDIT_KEY_FILE=str(settings.resolved_audit_key_file().resolve()),
        RTCOHORT_AUDIT_CHECKPOINTS=str(settings.resolved_audit_checkpoints().resolve()),
        RTCOHORT_WEB_HOOKS="rtcohort.web_hooks",
    )
    if key_dir is not None:
        env["RTCOHORT_KEY_DIR"] = str(key_dir.resolve())
    return env


def run_server(port: int, address: str, key_dir: Path | None) -> int:
    """Run the web app until it stops or Ctrl-C; return its exit code."""
    if key_dir is not None and not key_dir.is_dir():
        fail(f"--key-dir {key_dir}: not a folder")
    if key_dir is None:
        typer.echo(
            "warning: no --key-dir (RTCOHORT_KEY_DIR): questionnaires cannot be stored "
            "without the centre keys",
            err=True,
        )
    typer.echo(f"web app on http://{address}:{port}/ (Ctrl-C stops it)")
    process = subprocess.Popen(server_command(port, address), env=server_env(key_dir))

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # SIGTERM (a service manager, a test) as Ctrl-C

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return _stop_server(process)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_server(process: subprocess.Popen[bytes]) -> int:
    """Stop the Streamlit server (it never outlives ``rtcohort serve``)."""
    process.terminate()
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def serve(
    port: PortOpt = 8501,
    address: AddressOpt = "127.0.0.1",
    key_dir: KeyDirOpt = None,
) -> None:
    """Serve the web app (sign-in, pages by role, the patients' questionnaire).

    Example: rtcohort serve --port 8501 --key-dir /secure/keys
    """
    from rtcohort.cli.common import open_engine

    open_engine().dispose()  # fail early, with the hint, when the database is down
    code = run_server(port, address, key_dir)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``rtcohort serve`` to the root app."""
    app.command("serve")(serve)
