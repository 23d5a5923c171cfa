"""The concepts rtcohort defines, read from the data shipped in ``omop/vocab/data``.

Each source yields :class:`ConceptDef` rows keyed by ``(vocabulary_id, concept_code)``;
their ids come from the append-only registry (:mod:`omop.vocab.registry`). See
``omop/vocab/data/SOURCE.md`` for the provenance of every file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = [
    "CDM_FIELDS",
    "VOCABULARIES",
    "ConceptDef",
    "PendingMap",
    "our_concepts",
    "pending_maps",
    "reference_concepts",
]


@dataclass(frozen=True)
class ConceptDef:
    """One concept of ours (id assigned by the registry)."""

    vocabulary_id: str
    concept_code: str
    concept_name: str
    domain_id: str
    concept_class_id: str


@dataclass(frozen=True)
class PendingMap:
    """A ``Maps to`` into a standard vocabulary, resolved once Athena is loaded."""

    vocabulary_id: str
    concept_code: str
    relationship_id: str
    target_vocabulary_id: str
    target_concept_code: str


# SNOMED CT laterality qualifiers of the mCODE map, mapped as 'Maps to value'.
_LATERALITY = {"left": "7771000", "right": "24028007", "right+left": "51440002"}


# Our vocabularies: id -> (name, reference).
VOCABULARIES: dict[str, tuple[str, str]] = {
    "TG263": (
        "AAPM TG-263 structure names (names and SNOMED CT map from HL7 mCODE IG, CC0)",
        "https://build.fhir.org/ig/HL7/fhir-mCODE-ig/",
    ),
    "CTCAE v5.0": ("NCI CTCAE v5.0 terms (MedDRA 20.1 LLT codes)", "NCI CTEP, 2017"),
    "CTCAE v6.0": ("NCI CTCAE v6.0 terms (MedDRA 28.0 LLT codes)", "NCI CTEP, 2025"),
    "CTCAE Grade": ("CTCAE grade and grades 0-5", "NCI CTEP"),
    "QLQ-C30": (
        "EORTC QLQ-C30 v3.0 items and scales (structure only, no wording)",
        "EORTC QLQ-C30 Scoring Manual, 3rd ed. 2001; Giesinger et al. 2016",
    ),
    "RTC Timepoint": ("rtcohort follow-up timepoints", "rtcohort"),
    "RTC Consent": ("rtcohort consent states", "rtcohort"),
    "RTC Stage": (
        "rtcohort overall cancer stage groups 0-IV (UICC/AJCC TNM stage grouping; "
        "pre-coordinated like the OMOP Cancer Modifier stage concepts)",
        "rtcohort; UICC TNM Classification, 8th ed. 2017 / AJCC Cancer Staging "
        "Manual, 8th ed. 2017",
    ),
}

# CDM field concepts (vocabulary 'CDM', class 'Field') the platform links events with.
# 1147127 is verified and seeded as the standard concept; the others are seeded as our
# own concepts with the same name and re-pointed by `rtcohort vocab load-athena`.
VERIFIED_FIELD_CONCEPTS = {"condition_occurrence.condition_occurrence_id": 1147127}
CDM_FIELDS = (
    "condition_occurrence.condition_occurrence_id",
    "procedure_occurrence.procedure_occurrence_id",
    "measurement.measurement_id",
    "observation.observation_id",
    "episode.episode_id",
    "drug_exposure.drug_exposure_id",
    "device_exposure.device_exposure_id",
    "visit_occurrence.visit_occurrence_id",
    "note.note_id",
    "specimen.specimen_id",
    "image_occurrence.image_occurrence_id",
    "image_feature.image_feature_id",
    "survey_conduct.survey_conduct_id",
)


def _rows(name: str) -> list[dict[str, str]]:
    text = (resources.files("omop.vocab") / "data" / name).read_text(
        encoding="utf-8-sig"
    )
    return list(csv.DictReader(io.StringIO(text)))


def _tg263() -> Iterator[ConceptDef]:
    seen: set[str] = set()
    for name in (
        "tg263_to_snomedct_mapped.csv",
        "tg263_to_snomedct_unmapped_anatomy.csv",
        "tg263_to_snomedct_unmapped_volume.csv",
    ):
        for row in _rows(name):
            code = row["TG263-Primary Name"].strip()
            if not code or code.lower() in seen:
                continue
            seen.add(code.lower())
            description = (row.get("Description") or "").strip() or code
            yield ConceptDef(
                "TG263", code, description[:255], "Spec Anatomic Site", "Structure"
            )


def _ctcae() -> Iterator[ConceptDef]:
    for version, code_col, _soc_col, term_col in (
        ("5.0", "MedDRA Code", "MedDRA SOC", "CTCAE Term"),
        (
            "6.0",
            "CTCAE v6.0 MedDRA 28.0 LLT Code",
            "CTCAE v6.0 MedDRA 28.0 SOC",
            "CTCAE v6.0 MedDRA 28.0 Term",
        ),
    ):
        for row in _rows(f"ctcae_v{version}.csv"):
            yield ConceptDef(
                f"CTCAE v{version}",
                row[code_col].strip(),
                row[term_col].strip(),
                "Condition",
                "CTCAE Term",
            )
    yield ConceptDef(
        "CTCAE Grade", "grade", "CTCAE grade", "Observation", "CTCAE Grade"
    )
    for grade in range(6):
        label = "assessed, absent" if grade == 0 else f"grade {grade}"
        yield ConceptDef(
            "CTCAE Grade", str(grade), f"CTCAE {label}", "Meas Value", "CTCAE Grade"
        )


def _qlq_c30() -> Iterator[ConceptDef]:
    yield ConceptDef(
        "QLQ-C30", "QLQ-C30", "EORTC QLQ-C30 version 3.0", "Observation", "Survey"
    )
    for row in _rows("qlq_c30_items.csv"):
        item = row["item"].strip()
        yield ConceptDef(
            "QLQ-C30",
            f"q{item}",
            f"QLQ-C30 item {item} ({row['descriptor_neutral'].strip()})",
            "Observation",
            "Question",
        )
    for row in _rows("qlq_c30_scales.csv"):
        yield ConceptDef(
            "QLQ-C30",
            row["scale_code"].strip(),
            f"QLQ-C30 {row['scale_name'].strip()} score",
            "Measurement",
            "Scale",
        )
    yield ConceptDef(
        "QLQ-C30",
        "SUMMARY",
        "QLQ-C30 Summary Score (Giesinger 2016)",
        "Measurement",
        "Scale",
    )


def _cdm_fields() -> Iterator[ConceptDef]:
    for name in CDM_FIELDS:
        if name not in VERIFIED_FIELD_CONCEPTS:
            yield ConceptDef("CDM", name, name, "Metadata", "Field")


def _platform() -> Iterator[ConceptDef]:
    for row in _rows("platform_concepts.csv"):
        yield ConceptDef(
            row["vocabulary_id"],
            row["concept_code"],
            row["concept_name"],
            row["domain_id"],
            row["concept_class_id"],
        )


@cache
def our_concepts() -> tuple[ConceptDef, ...]:
    """Every concept rtcohort defines, in registry order of first appearance."""
    return (*_tg263(), *_ctcae(), *_qlq_c30(), *_cdm_fields(), *_platform())


@cache
def pending_maps() -> tuple[PendingMap, ...]:
    """TG-263 -> SNOMED CT maps by code (mCODE mapping; ids come from Athena).

    The body structure is a ``Maps to``; a laterality qualifier (left, right, both)
    is a ``Maps to value`` to the SNOMED CT qualifier value.
    """
    maps: list[PendingMap] = []
    for row in _rows("tg263_to_snomedct_mapped.csv"):
        code = row["SNOMED-CT Code"].strip()
        name = row["TG263-Primary Name"].strip()
        if not code or not name:
            continue
        maps.append(PendingMap("TG263", name, "Maps to", "SNOMED", code))
        qualifier = _LATERALITY.get(row.get("Qualifiers", "").strip().lower())
        if qualifier:
            maps.append(PendingMap("TG263", name, "Maps to value", "SNOMED", qualifier))
    return tuple(maps)


@cache
def reference_concepts() -> tuple[dict[str, str], ...]:
    """Return the standard concepts whose ids are verified (``concept_reference``)."""
    text = (resources.files("omop") / "spec" / "concept_reference.csv").read_text(
        encoding="utf-8"
    )
    return tuple(
        row
        for row in csv.DictReader(io.StringIO(text))
        if row["confidence"] in {"verified", "verified-id"} and row["concept_id"]
    )
