"""Summary tables kept by their writers for the dashboards' reads at national scale.

``prom_scale_score``: the QLQ-C30 scale scores of each person per timepoint and
scale, with the person's baseline score of the same scale on every row. The share
of patients deteriorating from baseline
(:func:`cohort.benchmark.prom_sql.deterioration_by_centre`) is then one aggregation
of these rows per centre, instead of a join of every scale score MEASUREMENT to its
SURVEY_CONDUCT and a pivot per patient. The rows are derived data: the PROM writer
(:func:`instruments.store.store_prom`) and the bulk loader
(:func:`cohort.simulate.bulk_load.load_cohort_bulk`) recompute a person's rows after
writing the person's questionnaires (:mod:`instruments.store.prom_summary`); erasure
deletes them with the person (``person_id``); migration 0013 fills them for the
questionnaires stored before it.

``dvh_sampled``: each stored DVH's cumulative curve sampled every ``step_gy`` (1 Gy),
in physical dose and in EQD2 (alpha/beta 3 Gy, the course's fractions). The
population DVH band (:func:`cohort.benchmark.queries_dose.dvh_band`) then reads the
samples of the chosen curves (selected in ``dvh`` by TG-263 name and person, joined
by ``dvh_id``: a re-mapping of names needs no change here) instead of decompressing
and sampling every histogram. Written by the DVH writers in the transaction of the
``dvh`` rows (:mod:`etl.store.dvh_samples`: :func:`etl.store.load.load_dataset` and
the bulk loader), deleted with them on a re-load and by erasure (``person_id``);
migration 0014 fills it for the DVHs stored before it.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from omop.base import Base

__all__ = ["DvhSampled", "PromScaleScore"]


class PromScaleScore(Base):
    """One person's QLQ-C30 score of one scale at one timepoint, and the baseline.

    ``timepoint`` is the questionnaire's timepoint code (its timing concept, else its
    timing source value); ``scale_concept_id`` the score's MEASUREMENT source concept;
    ``n_scores`` the number of scores of the person at this timepoint and scale (more
    than one is refused by the reads); ``score`` the highest of them;
    ``baseline_score`` the highest score of the scale at ``baseline`` (empty without
    one).
    """

    __tablename__ = "prom_scale_score"
    __table_args__ = (
        # A centre's or site's patients' rows without the table (index-only on
        # PostgreSQL): the read joins them to the enrolments it selects.
        Index(
            "ix_prom_scale_score_person",
            "person_id",
            postgresql_include=[
                "timepoint",
                "scale_concept_id",
                "n_scores",
                "score",
                "baseline_score",
            ],
        ),
    )

    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), primary_key=True
    )
    timepoint: Mapped[str] = mapped_column(String(100), primary_key=True)
    scale_concept_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n_scores: Mapped[int] = mapped_column(Integer, nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    baseline_score: Mapped[float | None] = mapped_column(Float, nullable=True)


class DvhSampled(Base):
    """One stored DVH's cumulative curve sampled on a dose grid, physical or EQD2.

    ``representation`` is ``physical`` or ``eqd2_ab<alpha/beta>`` (``eqd2_ab3``);
    ``fractions`` the course's fractions the EQD2 samples were computed with (empty
    for physical dose: the read uses a row only while the course's prescription
    still has them). ``samples`` holds ``n_samples`` little-endian float64 values:
    the volume (%) receiving at least 0, ``step_gy``, 2 ``step_gy``, ... Gy, up to the
    first grid point past the curve's last node (the grid
    :func:`etl.dose.dvh_sample.sample_cumulative` uses for the curve alone; beyond
    it the volume is 0). ``n_samples`` 0: the curve has no volume inside the dose
    grid (left out of a band).
    """

    __tablename__ = "dvh_sampled"

    dvh_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("dvh.dvh_id", ondelete="CASCADE"), primary_key=True
    )
    representation: Mapped[str] = mapped_column(String(16), primary_key=True)
    step_gy: Mapped[float] = mapped_column(Float, primary_key=True)
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("person.person_id"), nullable=False, index=True
    )
    fractions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    n_samples: Mapped[int] = mapped_column(Integer, nullable=False)
    samples: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
