"""NTCP datasets from OMOP: organ DVH, fractions, endpoint, covariates, exclusions.

:func:`extract_dataset` reads, as the acting user and through the permission layer
(:func:`cohort.permissions.scope_for`, action ``read_patients``), the patients chosen
by project, centre and treatment site, and builds the same in-memory cohort as the CSV
path (:class:`ntcp.cohort_csv.CohortTable`): one row per patient with the pseudonym,
the number of fractions, the organ's differential DVH (physical dose at bin centres,
volume fractions) and the binary outcome, plus the covariates ``age_years`` (at the
start of the RT course, :func:`etl.store.course_age.course_ages`; else RT start year
minus year of birth), ``sex_male`` (1/0), ``site`` and, for
PROM endpoints, ``baseline_score``. Every patient left out is listed with a reason
(:class:`ExclusionReason`); the read is written to the audit trail.

Rules (see ``docs/ntcp.md``, "Datasets from OMOP"):

* Only persons whose enrolment consents to data use now are considered (read in the
  extraction's transaction: a withdrawn person is excluded at once).
* A dataset built for a project, or by a researcher, names patients by their project
  pseudonyms (:mod:`cohort.project_keys`), never by the stored, centre-prefixed ones.
* The DVH is the ``dvh`` row of the TG-263 ``organ`` (decoded with
  :func:`etl.store.dvh_rows.dvh_from_row`); a patient with the organ in several dose
  grids is
  excluded unless exactly one of them is a ``MULTI_PLAN`` composite. Bins are merged to
  ``bin_width_gy`` (default 0.1 Gy); the part of the organ outside the dose grid must be
  at most ``max_outside_grid_fraction`` of its volume (the rest is normalised to 1).
* Time zero is the start date of the RT course (EPISODE) of that dose grid;
  the number of fractions is the course's prescription MEASUREMENT.
* ``ctcae:TERMS>=G@Dd``: an event is a grading of one of the terms at grade >= G on
  days 0..D after the RT start. Without an event, a patient counts as 0 only if
  followed at least D days (last CTCAE assessment of any term, or the last contact
  with ``censor_at="last_contact"``); otherwise excluded (short follow-up; died
  within the window). A grade >= G of the terms before RT start (or at the
  ``baseline`` timepoint) excludes the patient. ``time_to_event`` holds days and
  status (0 censored, 1 toxicity, 2 death first) with censoring at D.
* ``qlqc30:SCALE-P@T``: outcome 1 when the score at timepoint ``T`` is at least P
  points worse than at ``baseline`` (a fall for functional scales and QL2, a rise for
  symptom scales); patients without both scores are excluded.
"""

from ntcp.dataset.build import OmopDataset, extract_dataset
from ntcp.dataset.spec import (
    COVARIATES,
    DatasetError,
    DatasetSpec,
    Exclusion,
    ExclusionReason,
)

__all__ = [
    "COVARIATES",
    "DatasetError",
    "DatasetSpec",
    "Exclusion",
    "ExclusionReason",
    "OmopDataset",
    "extract_dataset",
]
