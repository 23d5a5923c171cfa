"""Make the cohort test helpers importable (tests run with --import-mode=importlib)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest
from argon2 import PasswordHasher


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with minimal cost: the tests create many users (not a security test)."""
    import cohort.users

    monkeypatch.setattr(
        cohort.users,
        "_HASHER",
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )


@pytest.fixture
def run(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``rtcohort`` as the operator on a fresh, upgraded database.

    Returns ``invoke(*args, code=0) -> output``, which asserts the exit code.
    """
    from typer.testing import CliRunner

    from rtcohort.cli import app

    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "admin-password")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (args, result.output)
        return result.output

    invoke("db", "upgrade")
    return invoke
