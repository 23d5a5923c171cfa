"""Standard OMOP concept ids the platform writes and selects on, named once.

Every module imports these names instead of repeating the number. Ids are those of
the OHDSI standardised vocabularies (Athena); the seed ships them so foreign keys hold
without a full vocabulary load. Our own concepts (ids from 2,050,000,000) are not
here: they come from :func:`omop.vocab.registry.our_concept_id`.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CASE_REPORT_FORM",
    "CM3_AS_ML",
    "DISEASE_EPISODE",
    "EHR",
    "FEMALE",
    "MALE",
    "NO_MATCHING_CONCEPT",
    "PATIENT_FILLED_SURVEY",
    "PERCENT",
    "REGISTRY",
    "RT_COURSE_EPISODE",
    "STANDARD_ALGORITHM_FROM_EHR",
]

#: "No matching concept": the ``*_concept_id`` of rows whose own concept is ours.
NO_MATCHING_CONCEPT: Final = 0

# Episodes (vocabulary Episode)
#: Cancer Radiotherapy: EPISODE ``episode_concept_id`` of an RT course.
RT_COURSE_EPISODE: Final = 32940
#: Disease Episode: EPISODE ``episode_concept_id`` of a cancer (parent of the course).
DISEASE_EPISODE: Final = 32533

# Type concepts (vocabulary Type Concept)
#: Case Report Form: CTCAE gradings, follow-up timepoint visits.
CASE_REPORT_FORM: Final = 32809
#: Patient filled survey: PROM answers and scores.
PATIENT_FILLED_SURVEY: Final = 32862
#: EHR: the RT course, its procedure and prescription rows from the treatment plan.
EHR: Final = 32817
#: Standard algorithm from EHR: dose metrics computed by our DVH engine.
STANDARD_ALGORITHM_FROM_EHR: Final = 32882
#: Registry: observation periods, deaths and courses recorded by the cohort registry.
REGISTRY: Final = 32879

# Gender (vocabulary Gender)
#: MALE.
MALE: Final = 8507
#: FEMALE.
FEMALE: Final = 8532

# Units (vocabulary UCUM)
#: percent (%).
PERCENT: Final = 8554
#: milliliter (mL): volumes in cm3.
CM3_AS_ML: Final = 8587
