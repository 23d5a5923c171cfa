"""QLQ-C30 trajectories and deterioration per centre, aggregated in SQL.

The benchmark's PROM reads (:func:`cohort.benchmark.queries_outcome.prom_trajectory`
and ``prom_deterioration``) at national scale: reading every questionnaire's scores
into a frame (:func:`instruments.store.read_prom_scores`, one query per
questionnaire) took seconds. Here the scores stay in the database: both read the
per-person summary (:class:`omop.summary_tables.PromScaleScore`, one row per
patient, timepoint and scale with the patient's baseline score), one ``GROUP BY``
(centre, timepoint, scale) each. The rules are
those of :func:`cohort.benchmark.prom.trajectory` and
:func:`~cohort.benchmark.prom.deterioration_share`: a score is a scale score
MEASUREMENT (QLQ-C30 scale concept) of a questionnaire, its timepoint the
questionnaire's timing concept, else its timing source value; the centre the
patient's enrolment centre.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from cohort.benchmark.errors import BenchmarkInputError
from cohort.benchmark.prom import scale_direction, with_interval
from instruments.store.prom_summary import (
    BASELINE,
    INSTRUMENT,
    scale_concepts,
    scale_score_rows,
)
from omop.cdm import SurveyConduct
from omop.summary_tables import PromScaleScore

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = ["deterioration_by_centre", "trajectory_by_centre"]

_THRESHOLD_POINTS = 10.0


def _scores(session: Session, persons: Select[Any]) -> Any:
    """Subquery: ``person_id, timepoint, scale`` (its concept), ``score``, ``site``.

    ``persons`` selects ``person_id, care_site_id`` (the enrolment centre).
    """
    who = persons.subquery()
    person_id, site = who.c
    return (
        scale_score_rows(session)
        .add_columns(site.label("site"))
        .join(who, person_id == SurveyConduct.person_id)
        .subquery()
    )


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(rows, columns=columns)
    return df.sort_values(columns[:3], kind="stable").reset_index(drop=True)


def _summary_cells(session: Session, persons: Select[Any]) -> list[Any] | None:
    """Sum the scores per centre, timepoint and scale from the per-person summary.

    ``site, timepoint, scale, n, sum, sum of squares`` rows, or None when a patient
    has more than one score in a cell (the summary keeps one score per cell; the
    trajectory counts every score, so those cells are read from the scores).
    """
    who = persons.subquery()
    p = PromScaleScore
    site = who.c[1]
    rows = session.execute(
        select(
            site, p.timepoint, p.scale_concept_id, func.count(), func.sum(p.score),
            func.sum(p.score * p.score), func.max(p.n_scores),
        )
        .join(who, who.c[0] == p.person_id)
        .group_by(site, p.timepoint, p.scale_concept_id)
    ).all()  # fmt: skip
    if any(int(most) > 1 for *_, most in rows):
        return None
    return [row[:6] for row in rows]


def _score_cells(session: Session, persons: Select[Any]) -> list[Any]:
    """As :func:`_summary_cells`, from every scale score MEASUREMENT."""
    s = _scores(session, persons)
    return list(
        session.execute(
            select(
                s.c.site, s.c.timepoint, s.c.scale, func.count(), func.sum(s.c.score),
                func.sum(s.c.score * s.c.score),
            ).group_by(s.c.site, s.c.timepoint, s.c.scale)
        ).all()
    )  # fmt: skip


def trajectory_by_centre(
    session: Session, persons: Select[Any], labels: dict[int, str]
) -> pd.DataFrame:
    """Return mean QLQ-C30 scores per centre, timepoint and scale with 95% intervals.

    Aggregates the per-person summary :class:`omop.summary_tables.PromScaleScore`
    (one score per patient, timepoint and scale, kept by the writers); when a
    selected patient has two scores in one cell, every score MEASUREMENT instead,
    so that each score counts as the frame rule counts it.

    Parameters
    ----------
    persons
        SQL selection of ``person_id, care_site_id`` of the patients (their
        enrolment centre, which must be in ``labels``).
    labels
        ``care_site_id -> centre label``.

    Returns
    -------
    DataFrame
        As :func:`cohort.benchmark.prom.trajectory` with ``by=("centre",)``:
        ``centre, timepoint, scale, n, mean, sd, lower_95, upper_95``.
    """
    rows = _summary_cells(session, persons)
    if rows is None:
        rows = _score_cells(session, persons)
    scales = scale_concepts()
    out = []
    for site, timepoint, scale, n, total, squares in rows:
        mean = float(total) / n
        var = (float(squares) - n * mean * mean) / (n - 1) if n > 1 else math.nan
        out.append({"centre": labels[int(site)], "timepoint": str(timepoint),
                    "scale": scales[int(scale)], "n": int(n), "mean": mean,
                    "sd": math.sqrt(max(var, 0.0)) if n > 1 else math.nan})  # fmt: skip
    columns = ["centre", "timepoint", "scale", "n", "mean", "sd"]
    return with_interval(_frame(out, columns))


def _refuse_duplicates(session: Session, p: Any, who: Any) -> None:
    """Raise as the frame rule does when a patient has two scores of one cell."""
    twice = session.execute(
        select(p.person_id, p.timepoint, p.scale_concept_id)
        .join(who, who.c[0] == p.person_id)
        .where(p.n_scores > 1)
        .order_by(p.person_id, p.timepoint, p.scale_concept_id)
        .limit(1)
    ).first()
    if twice is not None:
        raise BenchmarkInputError(
            f"PROM table: more than one score for patient {twice[0]!r}, "
            f"timepoint {twice[1]!r}, scale {scale_concepts()[int(twice[2])]!r}"
        )


def deterioration_by_centre(
    session: Session, persons: Select[Any], labels: dict[int, str]
) -> pd.DataFrame:
    """Return the share deteriorating >= 10 points from baseline per centre.

    Aggregates the per-person summary :class:`omop.summary_tables.PromScaleScore`
    (each follow-up score with the baseline score of its patient and scale, kept by
    the writers: :mod:`instruments.store.prom_summary`).

    Returns
    -------
    DataFrame
        As :func:`cohort.benchmark.prom.deterioration_share` with ``by=("centre",)``:
        ``centre, timepoint, scale, n, n_deteriorated, share``.

    Raises
    ------
    BenchmarkInputError
        When a patient has two scores at one timepoint and scale.
    """
    who = persons.subquery()
    p = PromScaleScore
    scales = scale_concepts()
    sign = scale_direction(list(scales.values()), INSTRUMENT)
    worse_up = [c for c, code in scales.items() if sign[code] < 0]
    change = case(
        (p.scale_concept_id.in_(worse_up), p.score - p.baseline_score),
        else_=p.baseline_score - p.score,
    )
    paired = p.baseline_score.is_not(None) & (p.timepoint != BASELINE)
    site = who.c[1]
    rows = session.execute(
        select(
            site, p.timepoint, p.scale_concept_id,
            func.sum(case((paired, 1), else_=0)),
            func.sum(case((paired & (change >= _THRESHOLD_POINTS), 1), else_=0)),
            func.max(p.n_scores),
        )
        .join(who, who.c[0] == p.person_id)
        .group_by(site, p.timepoint, p.scale_concept_id)
    ).all()  # fmt: skip
    if any(int(most) > 1 for *_, most in rows):
        _refuse_duplicates(session, p, who)
    out = []
    for site_id, timepoint, scale, n, k, _most in rows:
        if n:
            out.append({"centre": labels[int(site_id)], "timepoint": str(timepoint),
                        "scale": scales[int(scale)], "n": int(n),
                        "n_deteriorated": int(k),
                        "share": int(k) / int(n)})  # fmt: skip
    return _frame(out, ["centre", "timepoint", "scale", "n", "n_deteriorated", "share"])
