"""Create, migrate, seed and check an rtcohort database.

``upgrade`` runs the Alembic migrations and the vocabulary seed in one transaction;
``check_schema`` compares the live schema with the bundled OMOP spec (what
``rtcohort db check`` prints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select, types
from sqlalchemy.orm import Session

from omop.engine import check_connection
from omop.errors import SchemaConflictError
from omop.observation_period import recompute_observation_periods
from omop.spec import TableSpec, TypeFamily, load_spec
from omop.vocab.seed import SeedReport, seed_vocabulary

__all__ = [
    "SchemaReport",
    "alembic_config",
    "check_schema",
    "current_revision",
    "database_info",
    "upgrade",
]


def alembic_config(url: str | None = None) -> Config:
    """Return an Alembic config for the bundled migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", "omop:migrations")
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def current_revision(engine: Engine) -> str | None:
    """Return the database's Alembic revision, or None when it has none."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _guard_foreign_schema(engine: Engine) -> None:
    config = alembic_config()
    known = {
        rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()
    }
    tables = set(inspect(engine).get_table_names())
    revision = current_revision(engine)
    if revision is None and tables - {"alembic_version"}:
        sample = ", ".join(sorted(tables)[:5])
        raise SchemaConflictError(
            f"the database already holds {len(tables)} tables ({sample}, ...) that "
            "rtcohort did not create; refusing to touch them. Use an empty database."
        )
    if revision is not None and revision not in known:
        raise SchemaConflictError(
            f"the database is at migration {revision!r}, which this rtcohort version "
            "does not know (a newer rtcohort, or another application); nothing changed"
        )


def upgrade(engine: Engine) -> SeedReport:
    """Migrate to the newest schema and seed the vocabulary (idempotent).

    Then derives every OBSERVATION_PERIOD from the stored events
    (:func:`omop.observation_period.recompute_observation_periods`), which brings
    data written under an older period rule in line.

    Raises
    ------
    DatabaseUnavailableError
        When the database cannot be reached.
    SchemaConflictError
        When the database holds a schema that is not rtcohort's.
    """
    check_connection(engine)
    _guard_foreign_schema(engine)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        with Session(bind=connection) as session:
            report = seed_vocabulary(session)
            recompute_observation_periods(session)
            session.flush()
    return report


@dataclass
class SchemaReport:
    """Result of comparing the live schema with the spec."""

    checked: list[str] = field(default_factory=list)
    differences: dict[str, list[str]] = field(default_factory=dict)

    @property
    def conforming(self) -> int:
        """Number of checked tables without a difference."""
        return sum(1 for t in self.checked if not self.differences.get(t))


def _family(sa_type: types.TypeEngine[Any]) -> tuple[TypeFamily, int | None]:
    if isinstance(sa_type, types.BigInteger):
        return TypeFamily.BIGINT, None
    if isinstance(sa_type, types.Integer):
        return TypeFamily.INTEGER, None
    if isinstance(sa_type, types.Float | types.Numeric):
        return TypeFamily.FLOAT, None
    if isinstance(sa_type, types.DateTime):
        return TypeFamily.DATETIME, None
    if isinstance(sa_type, types.Date):
        return TypeFamily.DATE, None
    if isinstance(sa_type, types.String):
        length = getattr(sa_type, "length", None)
        if isinstance(sa_type, types.Text) or length is None:
            return TypeFamily.TEXT, None
        return TypeFamily.STRING, int(length)
    return TypeFamily.TEXT, None  # unknown types compare as text and will differ


def _compare(
    table: TableSpec, columns: list[Any], pk: list[str], dialect: str
) -> list[str]:
    problems: list[str] = []
    live = {c["name"].lower(): c for c in columns}
    for spec in table.fields:
        col = live.pop(spec.name, None)
        if col is None:
            problems.append(f"column {spec.name} missing")
            continue
        family, length = _family(col["type"])
        expected = spec.family
        if expected is TypeFamily.BIGINT and dialect == "sqlite":
            expected = TypeFamily.INTEGER  # SQLite has one integer type
        if family is not expected or (
            expected is TypeFamily.STRING and length != spec.length
        ):
            shown = f"{family.value}({length})" if length else family.value
            want = f"{expected.value}({spec.length})" if spec.length else expected.value
            problems.append(f"column {spec.name}: type {shown}, spec {want}")
        if bool(col["nullable"]) == spec.required and not spec.primary_key:
            problems.append(
                f"column {spec.name}: "
                + (
                    "nullable, spec NOT NULL"
                    if spec.required
                    else "NOT NULL, spec nullable"
                )
            )
    problems.extend(f"column {name} not in spec" for name in sorted(live))
    if sorted(c.lower() for c in pk) != sorted(table.primary_key):
        problems.append(
            f"primary key ({', '.join(pk) or 'none'}), "
            f"spec ({', '.join(table.primary_key) or 'none'})"
        )
    return problems


def check_schema(engine: Engine, *, include_extensions: bool = False) -> SchemaReport:
    """Compare every spec table with the live database.

    Checks existence, columns, type family (and varchar length), nullability and
    primary key of the 41 spec tables (plus ``survey_conduct`` when asked).
    """
    inspector = inspect(engine)
    live_tables = {t.lower() for t in inspector.get_table_names()}
    report = SchemaReport()
    for table in load_spec():
        if table.source == "v6.0 extension" and not include_extensions:
            continue
        report.checked.append(table.name)
        if table.name not in live_tables:
            report.differences[table.name] = ["table missing"]
            continue
        columns = inspector.get_columns(table.name)
        pk = inspector.get_pk_constraint(table.name).get("constrained_columns") or []
        problems = _compare(table, columns, list(pk), engine.dialect.name)
        if problems:
            report.differences[table.name] = problems
    return report


def database_info(engine: Engine) -> dict[str, Any]:
    """Backend, revision and row counts of the main tables."""
    from omop import cdm

    info: dict[str, Any] = {
        "url": engine.url.render_as_string(hide_password=True),
        "backend": engine.dialect.name,
        "revision": current_revision(engine),
    }
    with Session(engine) as session:
        server = session.connection().dialect.server_version_info
        info["server_version"] = ".".join(str(p) for p in server or ())
        if info["revision"] is None:
            info["rows"], info["concepts_by_vocabulary"] = {}, {}
            return info
        counts: dict[str, int] = {}
        for model in (
            cdm.Person,
            cdm.Concept,
            cdm.Vocabulary,
            cdm.Measurement,
            cdm.Observation,
            cdm.Episode,
            cdm.ImageOccurrence,
        ):
            counts[str(model.__tablename__)] = int(
                session.scalar(select(func.count()).select_from(model)) or 0
            )
        vocabularies = session.execute(
            select(cdm.Concept.vocabulary_id, func.count())
            .group_by(cdm.Concept.vocabulary_id)
            .order_by(cdm.Concept.vocabulary_id)
        ).all()
    info["rows"] = counts
    info["concepts_by_vocabulary"] = {v: int(n) for v, n in vocabularies}
    return info
