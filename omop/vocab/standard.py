"""Standard OMOP concept ids the platform writes and selects on, named once.

Every module imports these names instead of repeating the number. Ids are those of
the OHDSI standardised vocabularies (Athena); the seed ships them so foreign keys hold
without a full vocabulary load. Our own concepts (ids from 2,050,000,000) are not
here: they come from :func:`omop.vocab.registry.our_concept_id`. Each id has two
public sources in ``omop/vocab/data/standard_concepts.csv``; ids we could not verify
twice (the Gy unit, the RT object modalities, SNOMED anatomy) are not here: those
fields stay 0 with the value in ``*_source_value`` (docs/omop.md).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CASE_REPORT_FORM",
    "CM3_AS_ML",
    "COMPUTED_TOMOGRAPHY",
    "DISEASE_EPISODE",
    "EHR",
    "FEMALE",
    "MALE",
    "MALIGNANT_NEOPLASTIC_DISEASE",
    "NO_MATCHING_CONCEPT",
    "OUTPATIENT_VISIT",
    "PATIENT_FILLED_SURVEY",
    "PERCENT",
    "REGISTRY",
    "RT_COURSE_EPISODE",
    "RT_PROCEDURE",
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

# Visits (vocabulary Visit)
#: Outpatient Visit: the VISIT_OCCURRENCE of a follow-up timepoint (case report form).
OUTPATIENT_VISIT: Final = 9202

# Procedures and conditions (vocabulary SNOMED)
#: Radiation oncology AND/OR radiotherapy (SNOMED 108290001): the RT course
#: PROCEDURE_OCCURRENCE and the ``episode_object_concept_id`` of the course EPISODE.
RT_PROCEDURE: Final = 4029715
#: Computed tomography (SNOMED 77477000): ``modality_concept_id`` of CT series.
#: RTSTRUCT, RTPLAN and RTDOSE have no standard concept (0; see docs/omop.md).
COMPUTED_TOMOGRAPHY: Final = 4300757
#: Malignant neoplastic disease (SNOMED 363346000): ``episode_object_concept_id`` of
#: the disease EPISODE (the site-specific cancer is not coded by the platform).
MALIGNANT_NEOPLASTIC_DISEASE: Final = 443392
