"""FHIR R4 exchange of questionnaires: Questionnaire, QuestionnaireResponse, Bundle.

Resources are validated with the R4B models of ``fhir.resources`` (R4B reads R4 JSON for
these resources). The package holds:

- :mod:`~instruments.fhir.urls`: the canonical URLs and identifier systems we define;
- :mod:`~instruments.fhir.read`: bounded JSON loading, one resource or a Bundle,
  validation with resource paths, all-or-nothing reading;
- :mod:`~instruments.fhir.fields`: fields our resources share (id key, subject,
  timepoint extension);
- :mod:`~instruments.fhir.questionnaire`: the ``Questionnaire`` of an instrument;
- :mod:`~instruments.fhir.response`: :class:`PromResponse` and its
  ``QuestionnaireResponse`` form, both ways.

``AdverseEvent`` lives in :mod:`instruments.fhir_adverse_event` and the size and depth
limits in :mod:`instruments.fhir_limits`.
"""

from instruments.fhir.fields import (
    SubjectIdentifier,
    resource_key,
    subject_of,
    timepoint_extension,
    timepoint_of,
)
from instruments.fhir.questionnaire import questionnaire
from instruments.fhir.read import (
    bundle,
    iter_resources,
    load_json,
    read_resources,
    validate_model,
)
from instruments.fhir.response import (
    PromResponse,
    parse_questionnaire_responses,
    questionnaire_response,
)
from instruments.fhir.urls import (
    FHIR_BASE,
    PSEUDONYM_SYSTEM,
    QLQ_C30_QUESTIONNAIRE_URL,
    QUESTIONNAIRE_URLS,
    TIMEPOINT_EXTENSION_URL,
    questionnaire_url,
)

__all__ = [
    "FHIR_BASE",
    "PSEUDONYM_SYSTEM",
    "QLQ_C30_QUESTIONNAIRE_URL",
    "QUESTIONNAIRE_URLS",
    "TIMEPOINT_EXTENSION_URL",
    "PromResponse",
    "SubjectIdentifier",
    "bundle",
    "iter_resources",
    "load_json",
    "parse_questionnaire_responses",
    "questionnaire",
    "questionnaire_response",
    "questionnaire_url",
    "read_resources",
    "resource_key",
    "subject_of",
    "timepoint_extension",
    "timepoint_of",
    "validate_model",
]
