"""Our checks of RT courses, dose metrics and the follow-up schedule (DQD's form).

Companions of :mod:`omop.quality.rt_checks`, over the row conventions of
ARCHITECTURE.md section 3: every RT course has a disease-episode parent; every dose
metric is linked (IMAGE_FEATURE or the course) and has EQD2 beside it when the
fractions are known; assessments lie inside their timepoint's window (a warning: late
answers are real). Date differences are written per backend (:func:`days_between`).
"""

from __future__ import annotations

from omop.quality.checks import Check

__all__ = [
    "ASSESSMENT_WINDOW_THRESHOLD_PCT",
    "DOSE_METRICS_SQL",
    "assessment_in_window",
    "course_disease_parent",
    "days_between",
    "dose_metric_linked",
    "eqd2_when_fractions_known",
]

_SQL_FILE = "rtcohort"
_METRIC_VOCAB = "RTC Dose Metric"
_COURSE = 32940
_DISEASE = 32533
_CRF = 32809
#: Percent of assessments allowed outside their window before the warning fails.
ASSESSMENT_WINDOW_THRESHOLD_PCT = 20.0


def _field(name: str) -> str:
    return (
        "(SELECT concept_id FROM concept WHERE vocabulary_id = 'CDM' "
        f"AND concept_class_id = 'Field' AND concept_name = '{name}')"
    )


def _top(alias: str) -> str:
    """Return SQL: the RT course ``alias`` is a course, not one plan of a course."""
    return (
        f"NOT EXISTS (SELECT 1 FROM episode pc WHERE pc.episode_id = "
        f"{alias}.episode_parent_id AND pc.episode_concept_id = :course)"
    )


def days_between(later: str, earlier: str, backend: str) -> str:
    """Return SQL for the days from ``earlier`` to ``later`` (two DATE expressions)."""
    if backend == "postgresql":
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def course_disease_parent() -> Check:
    """Every RT course EPISODE has a disease EPISODE (32533) of its person as parent.

    The plan episodes of a course of several plans have the course as parent, and
    through it the disease EPISODE (:mod:`etl.store.course_episode`).
    """
    courses = "SELECT COUNT(*) FROM episode t WHERE t.episode_concept_id = :course"
    parent = (
        "EXISTS (SELECT 1 FROM episode d WHERE d.episode_id = t.episode_parent_id "
        "AND d.person_id = t.person_id AND (d.episode_concept_id = :disease OR "
        "(d.episode_concept_id = :course AND EXISTS (SELECT 1 FROM episode g WHERE "
        "g.episode_id = d.episode_parent_id AND g.person_id = t.person_id "
        "AND g.episode_concept_id = :disease))))"
    )
    return Check(
        name="rtCourseHasDiseaseParent",
        level="TABLE",
        table="episode",
        field=None,
        numerator=f"{courses} AND NOT {parent}",
        denominator=courses,
        threshold=0.0,
        category="Conformance",
        subcategory="Relational",
        context="Verification",
        description="RT course EPISODEs (32940) without a disease EPISODE (32533) "
        "of the same person as episode_parent_id (directly, or through the course "
        "of several plans they are a plan of)",
        params={"course": _COURSE, "disease": _DISEASE},
        sql_file=_SQL_FILE,
    )


DOSE_METRICS_SQL = (
    "SELECT m.measurement_id, m.person_id, 'image' AS src, f.image_occurrence_id AS "
    "grid_id, m.value_as_number AS v, m.unit_concept_id, m.unit_source_value, "
    "c.concept_code AS code, substr(m.measurement_source_value, 1, "
    "length(m.measurement_source_value) - length(c.concept_code)) AS structure "
    "FROM measurement m JOIN image_feature f ON f.image_feature_id = "
    "m.measurement_event_id AND f.image_feature_event_id = m.measurement_id "
    "JOIN concept c ON c.concept_id = m.measurement_source_concept_id "
    f"AND c.vocabulary_id = '{_METRIC_VOCAB}' WHERE m.value_as_number IS NOT NULL "
    "UNION ALL "
    "SELECT m.measurement_id, m.person_id, 'course', m.measurement_event_id, "
    "m.value_as_number, m.unit_concept_id, m.unit_source_value, c.concept_code, "
    "substr(m.measurement_source_value, 1, length(m.measurement_source_value) - "
    "length(c.concept_code)) FROM measurement m JOIN episode e ON e.episode_id = "
    "m.measurement_event_id AND e.person_id = m.person_id "
    "JOIN concept c ON c.concept_id = m.measurement_source_concept_id "
    f"AND c.vocabulary_id = '{_METRIC_VOCAB}' WHERE m.value_as_number IS NOT NULL "
    f"AND m.meas_event_field_concept_id IN {_field('episode.episode_id')}"
)
"""Dose metrics with the dose grid they were computed on: ``src`` 'image' (linked
from IMAGE_FEATURE, ``grid_id`` the RTDOSE's IMAGE_OCCURRENCE) or 'course' (a course
sum linked to its RT course EPISODE, ``grid_id`` the episode)."""


_METRICS = (
    "SELECT COUNT(*) FROM measurement m JOIN concept c ON c.concept_id = "
    "m.measurement_source_concept_id AND c.vocabulary_id = 'RTC Dose Metric'"
)


def dose_metric_linked() -> Check:
    """Every dose metric is linked from IMAGE_FEATURE or to its RT course."""
    feature = (
        "EXISTS (SELECT 1 FROM image_feature f WHERE f.image_feature_event_id = "
        "m.measurement_id AND f.image_feature_event_field_concept_id IN "
        f"{_field('measurement.measurement_id')})"
    )
    course = (
        "EXISTS (SELECT 1 FROM episode e WHERE e.episode_id = m.measurement_event_id "
        f"AND m.meas_event_field_concept_id IN {_field('episode.episode_id')})"
    )
    return Check(
        name="rtDoseMetricLinked",
        level="FIELD",
        table="measurement",
        field="measurement_event_id",
        numerator=f"{_METRICS} WHERE NOT {feature} AND NOT {course}",
        denominator=_METRICS,
        threshold=0.0,
        category="Conformance",
        subcategory="Relational",
        context="Verification",
        description="Dose-metric MEASUREMENTs linked neither from an IMAGE_FEATURE "
        "nor to an RT course EPISODE",
        sql_file=_SQL_FILE,
    )


def eqd2_when_fractions_known() -> Check:
    """Each physical dose metric (Gy) of a course with known fractions has its EQD2.

    Per dose grid (:data:`DOSE_METRICS_SQL`): a plan dose's metrics with the
    fractions of the plan's course, a course sum's with the course prescription's.
    """
    rx = (
        "JOIN measurement rx ON rx.measurement_event_id = {episode} "
        f"AND rx.meas_event_field_concept_id IN {_field('episode.episode_id')} "
        "JOIN concept rc ON rc.concept_id = rx.measurement_source_concept_id "
        "AND rc.vocabulary_id = 'RTC Prescription' AND rc.concept_code = 'fractions' "
    )
    # The grids (dose images, courses) with known fractions, each found once: an
    # uncorrelated IN rather than a lookup per metric.
    image_fractions = (
        "p.grid_id IN (SELECT io.image_occurrence_id FROM image_occurrence io "
        "JOIN episode_event ee ON ee.event_id = io.procedure_occurrence_id AND "
        "ee.episode_event_field_concept_id IN "
        f"{_field('procedure_occurrence.procedure_occurrence_id')} "
        + rx.format(episode="ee.episode_id")
        + "WHERE rx.value_as_number > 0)"
    )
    course_fractions = (
        "p.grid_id IN (SELECT ce.episode_id FROM episode ce "
        + rx.format(episode="ce.episode_id")
        + "WHERE rx.value_as_number > 0)"
    )
    fractions = (
        f"((p.src = 'image' AND {image_fractions}) OR "
        f"(p.src = 'course' AND {course_fractions}))"
    )
    where = f"WHERE p.code LIKE '%[Gy]' AND p.code NOT LIKE 'EQD2 %' AND {fractions}"
    physical = f"WITH dm AS ({DOSE_METRICS_SQL}) SELECT COUNT(*) FROM dm p {where}"
    # Without the EQD2 metric of the same structure and grid: a physical metric
    # (role 0) whose group holds no EQD2 metric (role 1). Grouping by window rather
    # than a correlated NOT EXISTS keeps the cost linear whatever the planner
    # estimates; metrics without structure or grid match nothing, as in a join.
    ends = (
        "SELECT p.src, p.grid_id, p.structure, 'EQD2 ' || p.code AS key, 0 AS role "
        f"FROM dm p {where} UNION ALL "
        "SELECT q.src, q.grid_id, q.structure, q.code, 1 FROM dm q "
        "WHERE q.code LIKE 'EQD2 %' AND q.structure IS NOT NULL "
        "AND q.grid_id IS NOT NULL"
    )
    numerator = (
        f"WITH dm AS ({DOSE_METRICS_SQL}) SELECT COUNT(*) FROM (SELECT w.role, "
        "MAX(w.role) OVER (PARTITION BY w.src, w.grid_id, w.structure, w.key) "
        f"AS found FROM ({ends}) w) x WHERE x.role = 0 AND x.found = 0"
    )
    return Check(
        name="rtEqd2WhenFractionsKnown",
        level="FIELD",
        table="measurement",
        field="value_as_number",
        numerator=numerator,
        denominator=physical,
        threshold=0.0,
        category="Completeness",
        context="Verification",
        description="Physical dose metrics (Gy) of a course with known fractions "
        "without the EQD2 metric of the same structure and dose grid (plan dose or "
        "course sum)",
        sql_file=_SQL_FILE,
    )


def assessment_in_window(backend: str) -> Check:
    """Assessments (CTCAE gradings, PROMs) inside their timepoint's window (warning).

    The window of a timepoint is ``anchor + offset - window_before`` to ``anchor +
    offset + window_after`` (``cohort.schedule``), the anchor the start or planned
    end of the person's first RT course (a course of several plans spans them all;
    its plan episodes are not courses). Late answers are real, so the check is a
    warning with a threshold (:data:`ASSESSMENT_WINDOW_THRESHOLD_PCT`).
    """
    assessed = (
        "SELECT o.person_id, o.observation_date AS day, o.visit_occurrence_id "
        "FROM observation o JOIN concept c ON c.concept_id = "
        "o.observation_source_concept_id AND c.vocabulary_id LIKE 'CTCAE v%' "
        "WHERE o.observation_type_concept_id = :crf UNION ALL "
        "SELECT s.person_id, s.survey_start_date, s.visit_occurrence_id "
        "FROM survey_conduct s"
    )
    first = (
        "SELECT e.person_id, e.episode_start_date AS rt_start, "
        "COALESCE(e.episode_end_date, e.episode_start_date) AS rt_end FROM episode e "
        f"WHERE e.episode_concept_id = :course AND {_top('e')} AND NOT EXISTS "
        "(SELECT 1 FROM episode x WHERE x.person_id = e.person_id AND "
        f"x.episode_concept_id = :course AND {_top('x')} AND "
        "(x.episode_start_date < e.episode_start_date OR (x.episode_start_date = "
        "e.episode_start_date AND x.episode_id < e.episode_id)))"
    )
    offset = (
        f"{days_between('a.day', 'r.rt_start', backend)} * "
        f"(CASE WHEN tp.anchor = 'rt_start' THEN 1 ELSE 0 END) + "
        f"{days_between('a.day', 'r.rt_end', backend)} * "
        f"(CASE WHEN tp.anchor = 'rt_start' THEN 0 ELSE 1 END)"
    )
    rows = (
        f"WITH a AS ({assessed}), r AS ({first}) SELECT COUNT(*) FROM a "
        "JOIN visit_occurrence v ON v.visit_occurrence_id = a.visit_occurrence_id "
        "JOIN r ON r.person_id = a.person_id "
        "JOIN enrolment en ON en.person_id = a.person_id "
        "JOIN followup_protocol fp ON fp.code = en.protocol_code "
        "JOIN followup_timepoint tp ON tp.protocol_id = fp.protocol_id "
        "AND tp.code = v.visit_source_value"
    )
    outside = (
        f"({offset}) < tp.offset_days - tp.window_before_days OR "
        f"({offset}) > tp.offset_days + tp.window_after_days"
    )
    return Check(
        name="rtAssessmentInWindow",
        level="TABLE",
        table="visit_occurrence",
        field=None,
        numerator=f"{rows} WHERE {outside}",
        denominator=rows,
        threshold=ASSESSMENT_WINDOW_THRESHOLD_PCT,
        category="Plausibility",
        subcategory="Temporal",
        context="Validation",
        description="CTCAE gradings and PROMs dated outside their follow-up "
        "timepoint's window (warning: late answers are real)",
        params={"crf": _CRF, "course": _COURSE},
        sql_file=_SQL_FILE,
        severity="warning",
    )
