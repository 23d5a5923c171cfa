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
