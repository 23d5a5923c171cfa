"""The read queries ``benchmarks/scale.py`` times: one per dashboard view, and more.

:data:`VIEW_QUERIES` maps a name to ``callable(session)``; the lead can swap in the
dashboard's own functions. Recruitment and completion call :mod:`cohort.reports`
(as the admin); the dose, DVH, toxicity and PROM aggregations are SQL over the OMOP
conventions (ARCHITECTURE.md section 3), percentiles computed in the database
(``percentile_cont``, PostgreSQL). :func:`heavy_queries` adds the NTCP dataset
extraction (:func:`ntcp.dataset.extract_dataset`) and ``db quality``
(:func:`omop.quality.run_quality`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["VIEW_QUERIES", "heavy_queries"]

Query = Callable[[Session], Any]

#: What the dose views show (a frequent organ of two sites, a frequent metric).
ORGAN, METRIC, DVH_ORGAN, TERM, SCALE = (
    "Heart",
    "Mean[Gy]",
    "Lungs",
    "Pneumonitis",
    "QL2",
)


@cache
def _concepts() -> dict[str, Any]:
    from etl.mapping.naming import structure_concept_id
    from etl.store.dvh_rows import METRIC_VOCAB
    from instruments.ctcae import load_catalogue
    from omop.vocab.registry import our_concept_id

    code = load_catalogue("5.0").term(TERM).meddra_code
    v_metrics = [f"V{g}Gy[%]" for g in range(5, 75, 5)]
    return {
        "organ": structure_concept_id(ORGAN),
        "metric": our_concept_id(METRIC_VOCAB, METRIC),
        "dvh_organ": structure_concept_id(DVH_ORGAN),
        "v": {our_concept_id(METRIC_VOCAB, m): m for m in v_metrics},
        "volume": our_concept_id(METRIC_VOCAB, "Volume[cc]"),
        "term": our_concept_id("CTCAE v5.0", code),
        "scale": our_concept_id("QLQ-C30", SCALE),
    }


@cache
def _admin_name() -> str:
    return "admin"


def _admin(session: Session) -> Any:
    from cohort.users import ensure_admin, get_user

    ensure_admin(session, "scale-benchmark-password")
    return get_user(session, _admin_name())


def recruitment(session: Session) -> Any:
    """Recruitment per centre over all years (``cohort.reports``)."""
    from cohort.reports import recruitment_report

    return recruitment_report(
        session, _admin(session),
        start=datetime.date(1900, 1, 1), end=datetime.date(2100, 1, 1),
    )  # fmt: skip


def completion(session: Session) -> Any:
    """PROM completion per centre and timepoint (``cohort.reports``)."""
    from cohort.reports import completion_report

    return completion_report(session, _admin(session))


_DOSE_BY_CENTRE = text("""
SELECT p.care_site_id, count(*) AS n,
       percentile_cont(ARRAY[0.05, 0.25, 0.5, 0.75, 0.95])
         WITHIN GROUP (ORDER BY m.value_as_number) AS quantiles
FROM image_feature f
JOIN measurement m ON m.measurement_id = f.image_feature_event_id
JOIN person p ON p.person_id = f.person_id
WHERE f.anatomic_site_concept_id = :organ AND f.image_feature_concept_id = :metric
GROUP BY p.care_site_id ORDER BY p.care_site_id
""")


def dose_by_centre(session: Session) -> Any:
    """Distribution (5/25/50/75/95th percentiles) of Heart Mean[Gy] per centre."""
    c = _concepts()
    return session.execute(
        _DOSE_BY_CENTRE, {"organ": c["organ"], "metric": c["metric"]}
    ).all()


_DVH_BAND = text("""
WITH organ AS (  -- one row per stored structure (its Volume[cc] metric)
  SELECT person_id, image_occurrence_id FROM image_feature
  WHERE anatomic_site_concept_id = :organ AND image_feature_concept_id = :volume
)
SELECT v.metric, count(*) AS n,
       percentile_cont(ARRAY[0.05, 0.25, 0.5, 0.75, 0.95])
         WITHIN GROUP (ORDER BY coalesce(m.value_as_number, 0)) AS quantiles
FROM organ o CROSS JOIN unnest(CAST(:metrics AS integer[])) AS v(metric)
LEFT JOIN image_feature f
  ON f.anatomic_site_concept_id = :organ AND f.image_feature_concept_id = v.metric
 AND f.person_id = o.person_id AND f.image_occurrence_id = o.image_occurrence_id
LEFT JOIN measurement m ON m.measurement_id = f.image_feature_event_id
GROUP BY v.metric
""")


def dvh_band(session: Session) -> Any:
    """Population DVH band of Lungs: percentiles of V5Gy..V70Gy[%] over structures.

    ``VxGy`` is stored up to the structure's maximum dose only; above it the volume
    is 0, which the band counts.
    """
    c = _concepts()
    rows = session.execute(
        _DVH_BAND,
        {"organ": c["dvh_organ"], "volume": c["volume"], "metrics": list(c["v"])},
    ).all()
    band = [(c["v"][concept], n, q) for concept, n, q in rows]
    return sorted(band, key=lambda r: int(r[0][1:].split("Gy")[0]))


_TOXICITY = text("""
SELECT o.person_id, e.episode_start_date AS rt_start,
       min(o.observation_date) FILTER (WHERE o.value_as_number >= 2) AS event_date,
       max(o.observation_date) AS last_assessed
FROM observation o
JOIN episode e ON e.person_id = o.person_id AND e.episode_concept_id = 32940
WHERE o.observation_source_concept_id = :term
  AND o.observation_type_concept_id = 32809
GROUP BY o.person_id, e.episode_start_date
""")


def toxicity_events(session: Session) -> Any:
    """Per patient: RT start, first Pneumonitis grade >= 2, last assessment."""
    return session.execute(_TOXICITY, {"term": _concepts()["term"]}).all()


_PROM = text("""
SELECT s.timing_source_value, count(*) AS n, avg(m.value_as_number) AS mean,
       stddev_samp(m.value_as_number) AS sd
FROM measurement m
JOIN survey_conduct s ON s.survey_conduct_id = m.measurement_event_id
WHERE m.measurement_source_concept_id = :scale
  AND m.meas_event_field_concept_id = :field
GROUP BY s.timing_source_value
""")


def prom_trajectory(session: Session) -> Any:
    """Mean (and SD) of QLQ-C30 global health status (QL2) by timepoint."""
    from omop.vocab.lookup import field_concept_id

    field = field_concept_id(session, "survey_conduct.survey_conduct_id")
    return session.execute(_PROM, {"scale": _concepts()["scale"], "field": field}).all()


VIEW_QUERIES: dict[str, Query] = {
    "recruitment_report": recruitment,
    "completion_report": completion,
    "dose_metric_by_centre": dose_by_centre,
    "population_dvh_band": dvh_band,
    "toxicity_events": toxicity_events,
    "prom_trajectory": prom_trajectory,
}


def ntcp_extraction(session: Session) -> Any:
    """NTCP dataset of Lungs / Pneumonitis grade >= 2 within 180 days, lung patients."""
    from ntcp.dataset import DatasetSpec, extract_dataset

    spec = DatasetSpec(organ=DVH_ORGAN, endpoint=f"ctcae:{TERM}>=2@180d", site="lung")
    data = extract_dataset(session, _admin(session), spec)
    session.rollback()  # the audit record
    return data


def db_quality(session: Session) -> Any:
    """``rtcohort db quality`` (every check; never commits)."""
    from omop.quality import run_quality

    report = run_quality(session)
    session.rollback()
    return report


def heavy_queries() -> dict[str, Query]:
    """The slower reads, timed over fewer runs."""
    return {"ntcp_extraction": ntcp_extraction, "db_quality": db_quality}
