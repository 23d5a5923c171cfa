"""prom_scale_score (QLQ-C30 scores per person, timepoint, scale), DVH structure index

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 16:10:00.000000

Adds the summary table the benchmark's PROM deterioration read aggregates
(:class:`omop.summary_tables.PromScaleScore`, kept by the writers through
:func:`instruments.store.prom_summary.refresh_prom_summary`) and fills it from the
questionnaires already stored: per person, timepoint and scale the number of scale
scores, the highest and the person's baseline score of the scale; indexed by person
(covering on PostgreSQL). Adds ``ix_dvh_name_person`` (:data:`omop.read_indexes.
READ_INDEXES`): DVH rows by TG-263 name and person, covering the dataset and ROI
number on PostgreSQL (the completeness pages count ROIs per structure set without
reading the wide DVH rows). Downgrade drops both.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copies, not imports: a migration must not change when the code does.
#: QLQ-C30 scale and summary score concepts (our registry's ids).
_SCALES = tuple(range(2050002465, 2050002481))
#: ``RTC Timepoint`` concept id -> timepoint code.
_TIMEPOINTS = {
    2050002493: "baseline",
    2050002494: "eot",
    2050002495: "m3",
    2050002496: "m6",
    2050002497: "m12",
    2050002498: "m24",
    2050002499: "m36",
    2050002500: "m60",
}
_SURVEY_FIELD = "survey_conduct.survey_conduct_id"


def _backfill_rows() -> sa.Select[tuple[object, ...]]:
    survey = sa.table(
        "survey_conduct",
        sa.column("survey_conduct_id"),
        sa.column("person_id"),
        sa.column("timing_concept_id"),
        sa.column("timing_source_value"),
    )
    meas = sa.table(
        "measurement",
        sa.column("measurement_event_id"),
        sa.column("meas_event_field_concept_id"),
        sa.column("measurement_source_concept_id"),
        sa.column("value_as_number"),
    )
    concept = sa.table(
        "concept",
        sa.column("concept_id"),
        sa.column("vocabulary_id"),
        sa.column("concept_class_id"),
        sa.column("concept_name"),
    )
    field = (
        sa.select(sa.func.min(concept.c.concept_id))
        .where(
            concept.c.vocabulary_id == "CDM",
            concept.c.concept_class_id == "Field",
            concept.c.concept_name == _SURVEY_FIELD,
        )
        .scalar_subquery()
    )
    timepoint = sa.case(
        _TIMEPOINTS,
        value=sa.func.coalesce(survey.c.timing_concept_id, 0),
        else_=survey.c.timing_source_value,
    )
    scores = (
        sa.select(
            survey.c.person_id.label("person_id"),
            timepoint.label("timepoint"),
            meas.c.measurement_source_concept_id.label("scale"),
            sa.func.count().label("n"),
            sa.func.max(meas.c.value_as_number).label("score"),
        )
        .select_from(survey)
        .join(meas, meas.c.measurement_event_id == survey.c.survey_conduct_id)
        .where(
            meas.c.meas_event_field_concept_id == field,
            meas.c.measurement_source_concept_id.in_(_SCALES),
            meas.c.value_as_number.is_not(None),
            timepoint.is_not(None),
        )
        .group_by(survey.c.person_id, timepoint, meas.c.measurement_source_concept_id)
        .subquery()
    )
    baseline = sa.func.max(
        sa.case((scores.c.timepoint == "baseline", scores.c.score))
    ).over(partition_by=(scores.c.person_id, scores.c.scale))
    return sa.select(
        scores.c.person_id,
        scores.c.timepoint,
        scores.c.scale,
        scores.c.n,
        scores.c.score,
        baseline,
    )


def upgrade() -> None:
    op.create_index(
        "ix_dvh_name_person",
        "dvh",
        ["tg263_name", "person_id"],
        postgresql_include=["dataset_id", "roi_number"],
    )
    op.create_table(
        "prom_scale_score",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("timepoint", sa.String(length=100), nullable=False),
        sa.Column("scale_concept_id", sa.Integer(), nullable=False),
        sa.Column("n_scores", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("baseline_score", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.person_id"],
            name=op.f("fk_prom_scale_score_person_id_person"),
        ),
        sa.PrimaryKeyConstraint(
            "person_id",
            "timepoint",
            "scale_concept_id",
            name=op.f("pk_prom_scale_score"),
        ),
    )
    op.create_index(
        "ix_prom_scale_score_person",
        "prom_scale_score",
        ["person_id"],
        postgresql_include=[
            "timepoint",
            "scale_concept_id",
            "n_scores",
            "score",
            "baseline_score",
        ],
    )
    summary = sa.table(
        "prom_scale_score",
        *(
            sa.column(name)
            for name in (
                "person_id",
                "timepoint",
                "scale_concept_id",
                "n_scores",
                "score",
                "baseline_score",
            )
        ),
    )
    op.execute(
        summary.insert().from_select(
            [c.name for c in summary.columns], _backfill_rows()
        )
    )


def downgrade() -> None:
    op.drop_index("ix_prom_scale_score_person", table_name="prom_scale_score")
    op.drop_table("prom_scale_score")
    op.drop_index("ix_dvh_name_person", table_name="dvh")
