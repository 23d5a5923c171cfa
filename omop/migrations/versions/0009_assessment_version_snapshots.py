"""assessment_version.snapshot: superseded versions leave the OMOP tables

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 05:00:00.000000

The OMOP clinical tables keep only the current version of a corrected PROM or CTCAE
grading (OHDSI tools read them directly). Adds ``assessment_version.snapshot`` (JSON:
``{table: [{column: value}]}``, dates as ISO 8601 text) and moves the OMOP rows of every
superseded version recorded under 0007 into it. The version's natural key
(``kind, person_id, assessment_key, version``) becomes the unique index in place of
``(kind, row_id)`` (ids of removed rows are history, not live references).
Downgrade puts the snapshots back as OMOP rows (same ids).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PATIENT_FILLED_SURVEY = 32862
CASE_REPORT_FORM = 32809
RESTORE_ORDER = ("survey_conduct", "condition_occurrence", "observation", "measurement")
DATES = (datetime.date, datetime.datetime)


def _tables(bind: sa.Connection) -> dict[str, sa.Table]:
    metadata = sa.MetaData()
    metadata.reflect(
        bind,
        only=[
            "assessment_version",
            "survey_conduct",
            "observation",
            "measurement",
            "condition_occurrence",
        ],
    )
    return dict(metadata.tables)


def _encode(row: Any) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, datetime.date) else v
        for k, v in row._mapping.items()
    }


def _version_selections(
    t: dict[str, sa.Table], version: Any
) -> dict[str, sa.Select[Any]]:
    person, row = version.person_id, version.row_id
    obs = t["observation"]
    if version.kind == "prom":
        survey, meas = t["survey_conduct"], t["measurement"]
        return {
            "survey_conduct": sa.select(survey).where(
                survey.c.survey_conduct_id == row, survey.c.person_id == person
            ),
            "observation": sa.select(obs).where(
                obs.c.observation_event_id == row,
                obs.c.observation_type_concept_id == PATIENT_FILLED_SURVEY,
                obs.c.person_id == person,
            ),
            "measurement": sa.select(meas).where(
                meas.c.measurement_event_id == row,
                meas.c.measurement_type_concept_id == PATIENT_FILLED_SURVEY,
                meas.c.person_id == person,
            ),
        }
    condition = t["condition_occurrence"]
    return {
        "condition_occurrence": sa.select(condition).where(
            condition.c.condition_occurrence_id == version.condition_occurrence_id,
            condition.c.person_id == person,
        ),
        "observation": sa.select(obs).where(
            obs.c.observation_id == row,
            obs.c.observation_type_concept_id == CASE_REPORT_FORM,
            obs.c.person_id == person,
        ),
    }


def upgrade() -> None:
    with op.batch_alter_table("assessment_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snapshot", sa.JSON(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_assessment_version_kind_row_id"))
        batch_op.create_index(
            batch_op.f("ix_assessment_version_kind_person_id_assessment_key_version"),
            ["kind", "person_id", "assessment_key", "version"],
            unique=True,
        )
    bind = op.get_bind()
    t = _tables(bind)
    versions = t["assessment_version"]
    superseded = bind.execute(
        sa.select(versions).where(versions.c.superseded_by.is_not(None))
    ).all()
    for version in superseded:
        snapshot: dict[str, list[dict[str, Any]]] = {}
        for name, query in _version_selections(t, version).items():
            table = t[name]
            pk = next(iter(table.primary_key.columns))
            rows = bind.execute(query.order_by(pk)).all()
            if rows:
                snapshot[name] = [_encode(r) for r in rows]
                ids = [r._mapping[pk.name] for r in rows]
                bind.execute(sa.delete(table).where(pk.in_(ids)))
        bind.execute(
            sa.update(versions)
            .where(versions.c.version_id == version.version_id)
            .values(snapshot=snapshot)
        )


def downgrade() -> None:
    bind = op.get_bind()
    t = _tables(bind)
    versions = t["assessment_version"]
    for (snapshot,) in bind.execute(
        sa.select(versions.c.snapshot).where(versions.c.snapshot.is_not(None))
    ).all():
        for name in RESTORE_ORDER:
            table = t[name]
            kinds = {c.name: c.type.python_type for c in table.columns}
            rows = []
            for record in snapshot.get(name, []):
                row = dict(record)
                for column, value in record.items():
                    kind = kinds.get(column)
                    if isinstance(value, str) and kind in DATES:
                        row[column] = kind.fromisoformat(value)
                rows.append(row)
            if rows:
                bind.execute(sa.insert(table), rows)
    # Dropping the column recreates the table on SQLite, whose drop of the old copy
    # fails while rows of the new copy refer to it (superseded_by): unlink, then
    # link again.
    links = bind.execute(
        sa.select(versions.c.version_id, versions.c.superseded_by).where(
            versions.c.superseded_by.is_not(None)
        )
    ).all()
    bind.execute(sa.update(versions).values(superseded_by=None))
    with op.batch_alter_table("assessment_version", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_assessment_version_kind_person_id_assessment_key_version")
        )
        batch_op.create_index(
            batch_op.f("ix_assessment_version_kind_row_id"),
            ["kind", "row_id"],
            unique=True,
        )
        batch_op.drop_column("snapshot")
    for version_id, superseded_by in links:
        bind.execute(
            sa.update(versions)
            .where(versions.c.version_id == version_id)
            .values(superseded_by=superseded_by)
        )
