"""A migrated database per backend for the ingest tests (module scope), and options."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from etl.deid.keys import CentreKey
from etl.ingest.run import ImportOptions
from omop.filestore import FileStore

KEY = CentreKey("TST01", bytes(range(32)))
_n = itertools.count()


@dataclass
class Db:
    engine: Engine
    factory: sessionmaker[Session]
    root: Path

    def options(self, **changes: Any) -> ImportOptions:
        base: dict[str, Any] = {
            "centre": "TST01",
            "key": KEY,
            "store": FileStore(self.root / "files"),
            "quarantine_dir": self.root / "quarantine",
            "dvh_samples": 20_000,
        }
        base.update(changes)
        return ImportOptions(**base)


def make_db(
    request: pytest.FixtureRequest, tmp: Path, backend: str | None = None
) -> Iterator[Db]:
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory
    from rtcohort.wiring import after_upgrade

    backend = backend or request.param
    if request.config.getoption("--db") not in ("both", backend):
        pytest.skip(f"--db excludes {backend}")
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'ingest.sqlite'}"
    else:
        url = request.getfixturevalue("pg_server").create_database(
            f"ingest_{next(_n)}_{uuid.uuid4().hex[:8]}"
        )
    engine = make_engine(url)
    upgrade(engine)
    after_upgrade(engine)
    yield Db(engine, session_factory(engine), tmp)
    engine.dispose()
