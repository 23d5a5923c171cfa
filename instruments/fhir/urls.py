"""Canonical URLs and identifier systems that rtcohort defines for FHIR R4."""

from __future__ import annotations

from collections.abc import Mapping

from instruments.errors import InstrumentError

__all__ = [
    "FHIR_BASE",
    "PSEUDONYM_SYSTEM",
    "QLQ_C30_QUESTIONNAIRE_URL",
    "QUESTIONNAIRE_URLS",
    "TIMEPOINT_EXTENSION_URL",
    "questionnaire_url",
]

#: Base of every canonical URL rtcohort defines.
FHIR_BASE = "https://rtcohort.org/fhir"
#: Canonical URL of the EORTC QLQ-C30 v3.0 Questionnaire (structure only).
QLQ_C30_QUESTIONNAIRE_URL = f"{FHIR_BASE}/Questionnaire/eortc-qlq-c30"
#: Identifier system of rtcohort pseudonyms (``Patient.identifier`` / subject).
PSEUDONYM_SYSTEM = f"{FHIR_BASE}/sid/pseudonym"
#: Extension naming the follow-up timepoint (``valueCode``: baseline, eot, m3, ...).
TIMEPOINT_EXTENSION_URL = f"{FHIR_BASE}/StructureDefinition/timepoint"
#: Canonical Questionnaire URL -> instrument code.
QUESTIONNAIRE_URLS: Mapping[str, str] = {QLQ_C30_QUESTIONNAIRE_URL: "QLQ-C30"}


def questionnaire_url(code: str) -> str:
    """Return the canonical Questionnaire URL of an instrument code.

    Raises
    ------
    InstrumentError
        If no FHIR Questionnaire is defined for the instrument.
    """
    for url, known in QUESTIONNAIRE_URLS.items():
        if known == code.strip().upper():
            return url
    raise InstrumentError(f"no FHIR Questionnaire is defined for {code!r}")
