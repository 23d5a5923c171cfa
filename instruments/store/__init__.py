"""Write PROM and CTCAE assessments to OMOP and read them back as tidy frames.

Conventions (ARCHITECTURE.md section 3):

* **Timepoint.** One VISIT_OCCURRENCE per person and follow-up timepoint
  (``visit_source_value`` = timepoint code, ``visit_source_concept_id`` = its ``RTC
  Timepoint`` concept, ``visit_concept_id`` 9202 Outpatient Visit); every row below
  points to it.
* **PROM.** One SURVEY_CONDUCT row per completed questionnaire
  (``survey_source_concept_id`` = the instrument concept,
  ``survey_source_identifier`` = the idempotency key, ``timing_concept_id`` = the
  ``RTC Timepoint`` concept and ``timing_source_value`` = its code); each answered
  item an OBSERVATION and each scorable scale and the summary a MEASUREMENT, both
  pointing to the survey through ``*_event_id`` and the field concept
  ``survey_conduct.survey_conduct_id``; type Patient filled survey.
* **Toxicity.** Grade >= 1: a CONDITION_OCCURRENCE for the CTCAE term and an OBSERVATION
  for the grade with ``observation_event_id`` = the condition and the field concept
  ``condition_occurrence.condition_occurrence_id``; grade 0 ("assessed, absent"): the
  OBSERVATION alone. The grade OBSERVATION has ``observation_source_concept_id`` = the
  CTCAE term concept, ``value_as_number`` = grade, ``value_as_concept_id`` = the ``CTCAE
  Grade`` concept and ``qualifier_source_value`` = attribution; type Case Report
  Form.

Our concepts go in ``*_source_concept_id``; ``*_concept_id`` is 0. Every date is shifted
by the patient's date offset (from the centre key, passed in by the caller). Functions
take the session first and never commit: a failing batch leaves nothing behind when the
caller rolls back.

Readers: every other package reads these rows through the ``read_*`` functions here
(:func:`read_survey_timings` and :func:`read_toxicity_dates` take a SQL selection of
person ids, so a schedule over a whole centre stays one query per kind), never with
its own queries.

Corrections, not overwrites: a questionnaire is identified by the person and its key
(the FHIR resource id), a grading by person, CTCAE term and timepoint. Storing one again
unchanged is ``unchanged``; with other content it is ``refused`` unless a correction
reason is given, when the new content is stored as the new version and the earlier
version's rows are removed from the OMOP tables and kept as a snapshot in the platform
table ``assessment_version`` (:mod:`instruments.store.versions`). The OMOP tables hold
the current version only (for the readers here and every OHDSI tool alike);
:func:`assessment_history` returns all versions. Dates are checked as received (before
the date offset): not in the future, not before the year of birth, not after death.

Modules: :mod:`~instruments.store.common` (timepoint visit, concepts, outcomes, date
plausibility), :mod:`~instruments.store.prom`, :mod:`~instruments.store.toxicity`,
:mod:`~instruments.store.versions`, :mod:`~instruments.store.history`,
:mod:`~instruments.store.prom_summary` (the QLQ-C30 summary ``prom_scale_score``, which
:func:`store_prom` recomputes for the person after every questionnaire it writes).
"""

from __future__ import annotations

from instruments.store.common import (
    Assessment,
    StoreError,
    StoreOutcome,
    person_id_for_pseudonym,
)
from instruments.store.history import AssessmentRecord, assessment_history
from instruments.store.prom import (
    SurveyTiming,
    read_latest_scores,
    read_prom_answers,
    read_prom_scores,
    read_survey_timings,
    store_prom,
)
from instruments.store.toxicity import (
    ToxicityDate,
    read_toxicity,
    read_toxicity_dates,
    store_toxicity,
)
from instruments.store.versions import AssessmentKind, toxicity_key
from omop.vocab.standard import CASE_REPORT_FORM, PATIENT_FILLED_SURVEY

__all__ = [
    "CASE_REPORT_FORM",
    "PATIENT_FILLED_SURVEY",
    "Assessment",
    "AssessmentKind",
    "AssessmentRecord",
    "StoreError",
    "StoreOutcome",
    "SurveyTiming",
    "ToxicityDate",
    "assessment_history",
    "person_id_for_pseudonym",
    "read_latest_scores",
    "read_prom_answers",
    "read_prom_scores",
    "read_survey_timings",
    "read_toxicity",
    "read_toxicity_dates",
    "store_prom",
    "store_toxicity",
    "toxicity_key",
]
