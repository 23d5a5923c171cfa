"""The FHIR R4 ``Questionnaire`` of an instrument (item structure, site wording).

The QLQ-C30 ``Questionnaire`` has the canonical URL
:data:`~instruments.fhir.urls.QLQ_C30_QUESTIONNAIRE_URL`, one item per question with
linkId ``q1`` ... ``q30`` and ``answerOption`` codings ``1``-``4`` (``1``-``7`` for
q29-q30); its texts are neutral labels unless a site wording file is given (no EORTC
wording ships).

Examples
--------
>>> from instruments.fhir.urls import QLQ_C30_QUESTIONNAIRE_URL
>>> q = questionnaire("QLQ-C30")
>>> q["url"] == QLQ_C30_QUESTIONNAIRE_URL, q["item"][0]["linkId"]
(True, 'q1')
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.questionnaire import Questionnaire

from instruments.errors import FhirError
from instruments.fhir.read import validate_model
from instruments.fhir.urls import questionnaire_url
from instruments.registry import get_instrument
from instruments.wording import Wording

__all__ = ["questionnaire"]


def questionnaire(
    code: str = "QLQ-C30",
    *,
    wording: Wording | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """Return the FHIR R4 ``Questionnaire`` JSON of an instrument.

    Parameters
    ----------
    code
        Instrument code; only instruments with a canonical URL in
        :data:`~instruments.fhir.urls.QUESTIONNAIRE_URLS` can be exported.
    wording, language
        Site-supplied wording; without it the item texts are neutral labels.
    """
    url = questionnaire_url(code)
    spec = get_instrument(code).spec
    words = wording or Wording.empty()
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "url": url,
        "version": spec.version,
        "name": "EORTC_" + spec.code.replace("-", "_"),
        "title": f"EORTC {spec.code} (item structure; wording supplied by the site)",
        "status": "active",
        "subjectType": ["Patient"],
        "copyright": "EORTC questionnaires are (c) EORTC Quality of Life Group; use"
        " requires permission from EORTC (https://qol.eortc.org).",
        "item": [
            {
                "linkId": item.link_id,
                "text": words.text(item, language),
                "type": "choice",
                "answerOption": [
                    {"valueCoding": {"code": str(v), "display": str(v)}}
                    for v in range(item.response_min, item.response_max + 1)
                ],
            }
            for item in spec.items
        ],
    }
    if language:
        resource["language"] = language
    problems: list[str] = []
    validate_model(Questionnaire, resource, "Questionnaire", problems)
    if problems:  # pragma: no cover - our own output
        raise FhirError(problems)
    return resource
