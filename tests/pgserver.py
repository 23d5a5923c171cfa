"""Start a throw-away PostgreSQL server for the test session.

Uses the Debian ``postgresql`` binaries (``initdb``, ``pg_ctl``) in a temporary folder,
listening on a free loopback port. The server refuses to run as root, so when the tests
run as root the server runs as the ``postgres`` (or ``nobody``) account via ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "find_pg_bin", "start_postgres"]


def find_pg_bin() -> Path | None:
    """Return the folder holding ``initdb`` and ``pg_ctl``, or None."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found and Path(found).with_name("initdb").exists():
        return Path(found).resolve().parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server; :meth:`stop` removes it and its data."""

    bin_dir: Path
    data_dir: Path
    port: int
    run_as: str | None

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://rtcohort@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *command]
        return command

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        subprocess.run(
            self._cmd(
                "createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "rtcohort",
                name,
            ),
            check=True,
            capture_output=True,
        )
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        subprocess.run(
            self._cmd(
                "pg_ctl", "-D", str(self.data_dir / "data"), "-m", "immediate", "stop"
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """Initialise and start a server; raise RuntimeError naming what is missing."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found (initdb/pg_ctl); "
            "install the Debian package 'postgresql'"
        )
    run_as: str | None = None
    if os.geteuid() == 0:
        for account in ("postgres", "nobody"):
            try:
                pwd.getpwnam(account)
            except KeyError:
                continue
            run_as = account
            break
        if run_as is None:
            raise RuntimeError("running as root and no unprivileged account found")
    root = Path(tempfile.mkdtemp(prefix="rtcohort-pg-"))
    os.chmod(root, 0o755)
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(
        bin_dir=bin_dir, data_dir=root, port=_free_port(), run_as=run_as
    )
    subprocess.run(
        server._cmd(
            "initdb",
            "-D",
            str(root / "data"),
            "-U",
            "rtcohort",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=300 -c shared_buffers=256MB"
    )
    result = subprocess.run(
        server._cmd(
            "pg_ctl",
            "-D",
            str(root / "data"),
            "-o",
            options,
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ),
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        log = (root / "server.log").read_text(errors="replace")[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {result.stderr}\n{log}")
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", server.port)) == 0:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("PostgreSQL did not accept connections within 10 s")
