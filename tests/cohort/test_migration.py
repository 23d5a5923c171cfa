"""The migrations create exactly the models' schema on both backends (no drift)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from omop.database import upgrade
from omop.engine import make_engine
from omop.models import metadata


def test_migrations_match_models(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True}
            )
            diff = compare_metadata(context, metadata)
        assert diff == []
        tables = set(inspect(engine).get_table_names())
        for name in ("app_user", "consent_event", "audit_record", "audit_person"):
            assert name in tables
    finally:
        engine.dispose()
