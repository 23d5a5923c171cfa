"""Our own checks, in DQD's form, for what DQD does not know about radiotherapy data.

Each check is plain SQL over the row conventions of ARCHITECTURE.md section 3 (see
``etl/store/load.py`` and ``instruments/store.py``): our concepts are found through the
CONCEPT table by vocabulary and code, field concepts by name, so the SQL runs unchanged
on SQLite and PostgreSQL. Add a check by appending a builder to :data:`RT_CHECKS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from itertools import pairwise

from omop.quality.checks import Check
from omop.quality.rt_course_checks import (
    DOSE_METRICS_SQL,
    assessment_in_window,
    course_disease_parent,
    dose_metric_linked,
    eqd2_when_fractions_known,
)

__all__ = [
    "DVH_ORDER",
    "EVENT_DATES",
    "RT_BACKEND_CHECKS",
    "RT_CHECKS",
    "RT_COURSE_EPISODE",
    "event_in_observation_period",
    "rt_checks",
]

#: EPISODE concept of a radiotherapy course ("Treatment Regimen"... as written by etl).
RT_COURSE_EPISODE = 32940
#: Dose metrics that must not decrease along this order within one structure.
DVH_ORDER = ("D98%[Gy]", "D95%[Gy]", "D50%[Gy]", "D2%[Gy]", "Max[Gy]")
_METRIC_VOCAB = "RTC Dose Metric"
_SQL_FILE = "rtcohort"
_TOLERANCE_GY = 1e-6


def _field(name: str) -> str:
    return (
        "(SELECT concept_id FROM concept WHERE vocabulary_id = 'CDM' "
        f"AND concept_class_id = 'Field' AND concept_name = '{name}')"
    )


def course_prescription() -> Check:
    """Every RT course EPISODE has a prescription MEASUREMENT linked to it."""
    courses = "t.episode_concept_id = :course"
    linked = (
        "EXISTS (SELECT 1 FROM measurement m WHERE m.measurement_event_id = "
        "t.episode_id AND m.meas_event_field_concept_id IN "
        f"{_field('episode.episode_id')})"
    )
    return Check(
        level="TABLE",
        numerator=f"SELECT COUNT(*) FROM episode t WHERE {courses} AND NOT {linked}",
        denominator=f"SELECT COUNT(*) FROM episode t WHERE {courses}",
        threshold=0.0,
        category="Completeness",
        description="RT course EPISODEs (32940) with no prescription MEASUREMENT "
        "linked by measurement_event_id",
        params={"course": RT_COURSE_EPISODE},
        name="rtCourseHasPrescription",
        table="episode",
        field=None,
        sql_file=_SQL_FILE,
        context="Verification",
    )


def dvh_monotone() -> Check:
    """D98 <= D95 <= D50 <= D2 <= Max within one structure (physical and EQD2).

    Per dose grid: a plan dose's metrics (IMAGE_FEATURE) and a course sum's (linked
    to the RT course EPISODE) are each checked within themselves.
    """
    pairs: list[tuple[str, str]] = []
    for prefix in ("", "EQD2 "):
        order = [prefix + m for m in DVH_ORDER]
        pairs += list(pairwise(order))
        pairs.append((prefix + "D98%[Gy]", prefix + "D50%[Gy]"))  # organs lack D95
    params: dict[str, object] = {}
    rows = []
    for i, (low, high) in enumerate(pairs):
        params |= {f"lo{i}": low, f"hi{i}": high}
        rows.append(
            f"SELECT {i} AS k, CAST(:lo{i} AS TEXT) AS lo, CAST(:hi{i} AS TEXT) AS hi"
        )
    # Each metric is a low end (role 0, key v) or high end (role 1, key v + tol) of
    # the pairs of its structure and grid; a pair is out of order when the low key
    # exceeds the high key. Counting by window and group rather than by self-join
    # keeps the cost linear whatever the planner estimates.
    group = "person_id, src, grid_id, structure, k"
    known = "d.structure IS NOT NULL AND d.grid_id IS NOT NULL"
    ends = (
        f"WITH dm AS ({DOSE_METRICS_SQL}), pr AS ({' UNION ALL '.join(rows)}), "
        f"r AS (SELECT d.person_id, d.src, d.grid_id, d.structure, pr.k, 0 AS role, "
        "d.v AS key FROM dm d JOIN pr ON d.code = pr.lo "
        f"WHERE {known} UNION ALL "
        "SELECT d.person_id, d.src, d.grid_id, d.structure, pr.k, 1, d.v + :tol "
        f"FROM dm d JOIN pr ON d.code = pr.hi WHERE {known}) "
    )
    numerator = (
        f"{ends}SELECT COALESCE(SUM(w.below), 0) FROM "
        f"(SELECT r.role, SUM(r.role) OVER (PARTITION BY {group} ORDER BY r.key, "
        "r.role ROWS UNBOUNDED PRECEDING) AS below FROM r) w WHERE w.role = 0"
    )
    denominator = (
        f"{ends}SELECT COALESCE(SUM(g.n_lo * g.n_hi), 0) FROM (SELECT "
        f"SUM(1 - r.role) AS n_lo, SUM(r.role) AS n_hi FROM r GROUP BY {group}) g"
    )
    return Check(
        level="FIELD",
        numerator=numerator,
        denominator=denominator,
        threshold=0.0,
        category="Plausibility",
        subcategory="Atemporal",
        description="Pairs of dose metrics of one structure and dose grid (plan "
        "dose or course sum) out of order (D98 <= D95 <= D50 <= D2 <= Max)",
        params={**params, "tol": _TOLERANCE_GY},
        name="rtDvhMonotone",
        table="measurement",
        field="value_as_number",
        sql_file=_SQL_FILE,
        context="Verification",
    )


_ALL_DOSE_METRICS = (
    "SELECT COUNT(*) FROM measurement m JOIN concept c ON c.concept_id = "
    f"m.measurement_source_concept_id AND c.vocabulary_id = '{_METRIC_VOCAB}'"
)


def dose_metric_unit() -> Check:
    """Every dose metric MEASUREMENT (however linked) names its unit."""
    return Check(
        level="FIELD",
        numerator=f"{_ALL_DOSE_METRICS} WHERE m.unit_concept_id IS NULL OR "
        "m.unit_source_value IS NULL OR m.unit_source_value = ''",
        denominator=_ALL_DOSE_METRICS,
        threshold=0.0,
        category="Completeness",
        description="Dose-metric MEASUREMENTs without a unit (unit_concept_id null or "
        "no unit_source_value)",
        name="rtDoseMetricUnit",
        table="measurement",
        field="unit_source_value",
        sql_file=_SQL_FILE,
        context="Verification",
    )


def prom_score_range() -> Check:
    """PROM scale scores (MEASUREMENTs linked to SURVEY_CONDUCT) lie in 0-100."""
    scores = (
        "SELECT COUNT(*) FROM measurement t WHERE t.value_as_number IS NOT NULL AND "
        "t.meas_event_field_concept_id IN "
        f"{_field('survey_conduct.survey_conduct_id')}"
    )
    return Check(
        level="FIELD",
        numerator=f"{scores} AND (t.value_as_number < 0 OR t.value_as_number > 100)",
        denominator=scores,
        threshold=0.0,
        category="Plausibility",
        subcategory="Atemporal",
        description="PROM scale scores outside 0-100",
        name="rtPromScoreRange",
        table="measurement",
        field="value_as_number",
        sql_file=_SQL_FILE,
        context="Verification",
    )


def ctcae_grade_allowed() -> Check:
    """Each CTCAE grade OBSERVATION holds a grade its term defines (or 0)."""
    from instruments.ctcae import CtcaeVersion, load_catalogue

    allowed: list[str] = []
    for version in CtcaeVersion:
        groups: dict[tuple[int, ...], list[str]] = {}
        for term in load_catalogue(version).terms:
            if not re.fullmatch(r"\d+", term.meddra_code):
                continue
            groups.setdefault(term.allowed_grades, []).append(term.meddra_code)
        for grades, codes in sorted(groups.items()):
            allowed.append(
                f"(c.vocabulary_id = 'CTCAE v{version.value}' AND c.concept_code IN "
                f"({', '.join(repr(c) for c in codes)}) AND t.value_as_number IN "
                f"({', '.join(str(int(g)) for g in grades)}))"
            )
    graded = (
        "SELECT COUNT(*) FROM observation t JOIN concept c ON c.concept_id = "
        "t.observation_source_concept_id WHERE c.vocabulary_id LIKE 'CTCAE v%' "
        "AND t.value_as_number IS NOT NULL"
    )
    return Check(
        level="FIELD",
        numerator=f"{graded} AND NOT ({' OR '.join(allowed)})",
        denominator=graded,
        threshold=0.0,
        category="Conformance",
        subcategory="Value",
        description="CTCAE grade OBSERVATIONs with a grade the term does not define",
        name="rtCtcaeGradeAllowed",
        table="observation",
        field="value_as_number",
        sql_file=_SQL_FILE,
        context="Verification",
    )


def event_in_observation_period(table: str, date_field: str) -> Check:
    """Events of ``table`` dated inside one of the person's OBSERVATION_PERIODs."""
    inside = (
        "EXISTS (SELECT 1 FROM observation_period op WHERE op.person_id = t.person_id "
        f"AND op.observation_period_start_date <= t.{date_field} "
        f"AND op.observation_period_end_date >= t.{date_field})"
    )
    rows = f"SELECT COUNT(*) FROM {table} t WHERE t.{date_field} IS NOT NULL"
    return Check(
        name="rtEventInObservationPeriod",
        level="FIELD",
        table=table,
        field=date_field,
        numerator=f"{rows} AND NOT {inside}",
        denominator=rows,
        threshold=0.0,
        category="Plausibility",
        subcategory="Temporal",
        context="Verification",
        description=f"{table.upper()} rows dated outside every OBSERVATION_PERIOD of "
        "the person",
        sql_file=_SQL_FILE,
    )


#: Event tables and the date checked against the observation periods.
EVENT_DATES = (
    ("condition_occurrence", "condition_start_date"),
    ("procedure_occurrence", "procedure_date"),
    ("measurement", "measurement_date"),
    ("observation", "observation_date"),
    ("episode", "episode_start_date"),
    ("image_occurrence", "image_occurrence_date"),
    ("survey_conduct", "survey_start_date"),
)

#: Builders of our own checks; append to add one.
RT_CHECKS: list[Callable[[], Check]] = [
    *(partial(event_in_observation_period, t, f) for t, f in EVENT_DATES),
    course_prescription,
    course_disease_parent,
    dvh_monotone,
    dose_metric_linked,
    dose_metric_unit,
    eqd2_when_fractions_known,
    prom_score_range,
    ctcae_grade_allowed,
]
#: Builders whose SQL depends on the backend (date arithmetic).
RT_BACKEND_CHECKS: list[Callable[[str], Check]] = [assessment_in_window]


def rt_checks(backend: str = "sqlite") -> list[Check]:
    """Return our own checks (one per builder) for ``backend`` (sqlite, postgresql)."""
    return [build() for build in RT_CHECKS] + [
        build(backend) for build in RT_BACKEND_CHECKS
    ]
