"""A migrated database per backend for the ingest tests (module scope), and options."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, Table, select
from sqlalchemy.orm import Session, sessionmaker

from etl.deid.keys import CentreKey
from etl.ingest.run import ImportOptions
from omop.filestore import FileStore

KEY = CentreKey("TST01", bytes(range(32)))
#: Surrogate keys (and load times) that differ with the order datasets finish in.
_DROPPED = {
    "episode_id", "event_id", "episode_parent_id", "procedure_occurrence_id",
    "measurement_id", "observation_id", "image_feature_id", "image_feature_event_id",
    "dvh_id", "measurement_event_id", "observation_event_id", "object_id",
    "quarantine_id", "loaded_at", "received_at", "stored_at", "alg_datetime",
    "resolved_at",
}  # fmt: skip

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


def contents(db: Db) -> dict[str, list[str]]:
    """Rows of every ingest table, surrogate ids replaced by natural keys, sorted.

    Two imports of the same files into two databases give equal contents whatever
    order their datasets were loaded in (ids follow that order; store paths are
    shown relative to the store).
    """
    from tests.etl.ingest_corpus import CHECKED_TABLES

    meta = MetaData()
    root = str(db.options().store.root)
    out: dict[str, list[str]] = {}
    with db.engine.connect() as c:
        keys = {
            key: dict(c.execute(select(*_columns(c, table, key, natural))).all())
            for key, table, natural in (
                ("person_id", "person", "person_source_value"),
                ("image_occurrence_id", "image_occurrence", "image_series_uid"),
                ("dataset_id", "ingest_dataset", "dose_sop_instance_uid"),
            )
        }
        for name in CHECKED_TABLES:
            table = Table(name, meta, autoload_with=c)
            rows = []
            for row in c.execute(select(table)).mappings():
                shown = {
                    col: keys[col].get(value) if col in keys else value
                    for col, value in row.items()
                    if col not in _DROPPED
                }
                rows.append(repr(shown).replace(root, "<store>"))
            out[name] = sorted(rows)
    return out


def _columns(c: Any, table: str, *names: str) -> list[Any]:
    t = Table(table, MetaData(), autoload_with=c)
    return [t.c[n] for n in names]
