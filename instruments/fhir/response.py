"""A completed questionnaire and its FHIR R4 ``QuestionnaireResponse`` form.

A ``QuestionnaireResponse`` is read into a :class:`PromResponse`: the answers by item
number, the patient as the ``subject`` identifier (a hospital identifier, which the
caller pseudonymises with the centre key, or our pseudonym under
:data:`~instruments.fhir.urls.PSEUDONYM_SYSTEM`), and an idempotency key from the
resource id. Every problem is reported with its resource path and field; one bad
resource rejects the whole input.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from instruments.fhir.fields import (
    SubjectIdentifier,
    resource_key,
    subject_of,
    timepoint_extension,
    timepoint_of,
)
from instruments.fhir.questionnaire import questionnaire
from instruments.fhir.read import read_resources
from instruments.fhir.urls import QUESTIONNAIRE_URLS, questionnaire_url
from instruments.registry import get_instrument
from instruments.scoring import InstrumentSpec, ItemSpec

__all__ = [
    "PromResponse",
    "parse_questionnaire_responses",
    "questionnaire_response",
]

_ACCEPTED_STATUS = ("completed", "amended")


@dataclass(frozen=True)
class PromResponse:
    """One completed questionnaire read from (or for) a ``QuestionnaireResponse``.

    Attributes
    ----------
    resource_id
        Idempotency key: the resource id, else ``identifier.system|value``.
    instrument
        Instrument code (``QLQ-C30``).
    subject
        The patient.
    authored
        When the patient completed it (``date`` if only a date was sent).
    values
        Item number -> answer (``None`` for unanswered), every item of the instrument.
    status
        ``completed`` or ``amended``.
    timepoint
        Follow-up timepoint code from the :data:`TIMEPOINT_EXTENSION_URL` extension.
    """

    resource_id: str
    instrument: str
    subject: SubjectIdentifier
    authored: datetime | date | None
    values: Mapping[int, int | None]
    status: str = "completed"
    timepoint: str | None = None

    def as_row(self) -> npt.NDArray[np.float64]:
        """Answers as one row of floats in item order (``NaN`` for missing)."""
        spec = get_instrument(self.instrument).spec
        return np.array(
            [
                np.nan if self.values.get(i.number) is None else self.values[i.number]
                for i in spec.items
            ],
            dtype=np.float64,
        )


def questionnaire_response(response: PromResponse) -> dict[str, Any]:
    """Return the FHIR R4 ``QuestionnaireResponse`` JSON of a completed questionnaire.

    Unanswered items are left out; answers are ``valueCoding`` as in the Questionnaire.
    """
    spec = get_instrument(response.instrument).spec
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": response.resource_id,
        "questionnaire": f"{questionnaire_url(spec.code)}|{spec.version}",
        "status": response.status,
        "subject": response.subject.as_fhir(),
        "item": [
            {
                "linkId": item.link_id,
                "answer": [{"valueCoding": {"code": str(v), "display": str(v)}}],
            }
            for item in spec.items
            if (v := response.values.get(item.number)) is not None
        ],
    }
    if response.timepoint is not None:
        resource["extension"] = [timepoint_extension(response.timepoint)]
    if response.authored is not None:
        resource["authored"] = response.authored.isoformat()
    return resource


def parse_questionnaire_responses(
    data: str | bytes | Mapping[str, Any],
    *,
    source: str | None = None,
) -> list[PromResponse]:
    """Read and validate QuestionnaireResponses (one resource or a Bundle).

    Parameters
    ----------
    data
        JSON text (at most :data:`~instruments.fhir_limits.MAX_FHIR_BYTES`, nested at
        most :data:`~instruments.fhir_limits.MAX_JSON_DEPTH` levels) or a parsed
        resource.
    source
        Name of the input (a file name): every problem starts with it.

    Raises
    ------
    FhirError
        With every problem, each naming resource path and field: malformed JSON, an
        unknown questionnaire, an unknown or repeated linkId, a non-integer or
        out-of-range answer, a ``valueCoding`` whose system or code is not one of the
        item's ``answerOption`` codings in the Questionnaire (our Questionnaires code
        answers without a system: a coding with a system, e.g. LOINC, is refused), a
        missing subject identifier or id, a status other than completed/amended, one id
        sent twice with different content, or a document too large or nested too
        deeply (checked before parsing).

    Examples
    --------
    >>> from instruments.fhir.urls import PSEUDONYM_SYSTEM
    >>> from instruments.fhir.urls import QLQ_C30_QUESTIONNAIRE_URL
    >>> qr = {"resourceType": "QuestionnaireResponse", "id": "r1",
    ...       "status": "completed", "questionnaire": QLQ_C30_QUESTIONNAIRE_URL,
    ...       "subject": {"identifier": {"system": PSEUDONYM_SYSTEM, "value": "P1"}},
    ...       "item": [{"linkId": "q29", "answer": [{"valueInteger": 6}]}]}
    >>> parse_questionnaire_responses(qr)[0].values[29]
    6
    """
    return read_resources(
        data,
        "QuestionnaireResponse",
        QuestionnaireResponse,
        _read_response,
        source=source,
    )


def _instrument_of(canonical: str | None, path: str, problems: list[str]) -> str | None:
    url, _, version = (canonical or "").partition("|")
    code = QUESTIONNAIRE_URLS.get(url)
    if code is None:
        problems.append(f"{path}.questionnaire: unknown questionnaire {canonical!r}")
        return None
    expected = get_instrument(code).spec.version
    if version and version != expected:
        problems.append(
            f"{path}.questionnaire: version {version!r} of {code} is unknown"
            f" (known: {expected})"
        )
        return None
    return code


def _walk_items(items: Any, path: str) -> Iterator[tuple[str, Any]]:
    for i, item in enumerate(items or []):
        here = f"{path}.item[{i}]"
        yield here, item
        yield from _walk_items(item.item, here)


@functools.lru_cache(maxsize=8)
def _answer_options(code: str) -> Mapping[str, frozenset[tuple[str | None, str]]]:
    """LinkId -> the ``(system, code)`` of each answerOption of our Questionnaire."""
    return {
        item["linkId"]: frozenset(
            (o["valueCoding"].get("system"), o["valueCoding"]["code"])
            for o in item.get("answerOption", [])
            if "valueCoding" in o
        )
        for item in questionnaire(code)["item"]
    }


def _coding_problem(coding: Any, item: ItemSpec, options: Any) -> str | None:
    """Why a ``valueCoding`` is not one of the item's answer options (or ``None``)."""
    systems = {system for system, _ in options}
    if coding.system not in systems:
        expected = " or ".join(
            "no system" if s is None else repr(s)
            for s in sorted(systems, key=lambda s: s or "")
        )
        return (
            f"system: item {item.link_id} coding system {coding.system!r} is not the"
            f" Questionnaire's (expected {expected})"
        )
    if (coding.system, str(coding.code)) not in options:
        return (
            f"code: item {item.link_id} code {coding.code!r} is not an answer option"
            f" of the Questionnaire ({item.response_min}-{item.response_max})"
        )
    return None


def _answer_value(
    answer: Any, item: ItemSpec, path: str, problems: list[str], instrument: str
) -> int | None:
    if answer.valueCoding is not None:
        field, raw = "valueCoding.code", answer.valueCoding.code
    elif answer.valueInteger is not None:
        field, raw = "valueInteger", answer.valueInteger
    elif answer.valueDecimal is not None:
        field, raw = "valueDecimal", answer.valueDecimal
    else:
        problems.append(f"{path}: expected valueCoding or valueInteger")
        return None
    where = f"{path}.{field}"
    try:
        number = float(str(raw))
    except ValueError:
        problems.append(f"{where}: item {item.link_id} value {raw!r} is not a number")
        return None
    if not number.is_integer():
        problems.append(f"{where}: item {item.link_id} value {raw} is not an integer")
        return None
    value = int(number)
    if not item.response_min <= value <= item.response_max:
        problems.append(
            f"{where}: item {item.link_id} value {value} is outside the allowed range"
            f" {item.response_min}-{item.response_max}"
        )
        return None
    if answer.valueCoding is not None:
        options = _answer_options(instrument).get(item.link_id, frozenset())
        problem = _coding_problem(answer.valueCoding, item, options)
        if problem is not None:
            problems.append(f"{path}.valueCoding.{problem}")
            return None
    return value


def _read_response(
    model: QuestionnaireResponse, path: str, problems: list[str]
) -> PromResponse | None:
    before = len(problems)
    key = resource_key(model, path, problems)
    subject = subject_of(model, path, problems)
    if model.status not in _ACCEPTED_STATUS:
        problems.append(f"{path}.status: {model.status!r} is not completed or amended")
    code = _instrument_of(model.questionnaire, path, problems)
    if code is None:
        return None
    spec: InstrumentSpec = get_instrument(code).spec
    by_link = {item.link_id: item for item in spec.items}
    values: dict[int, int | None] = {item.number: None for item in spec.items}
    seen: set[str] = set()
    for here, item in _walk_items(model.item, path):
        answers = item.answer or []
        if not answers and item.item:
            continue  # a group
        spec_item = by_link.get(item.linkId)
        if spec_item is None:
            problems.append(f"{here}.linkId: unknown linkId {item.linkId!r} for {code}")
            continue
        if item.linkId in seen:
            problems.append(f"{here}.linkId: {item.linkId!r} answered twice")
            continue
        seen.add(item.linkId)
        if len(answers) > 1:
            problems.append(f"{here}.answer: more than one answer")
            continue
        if answers:
            values[spec_item.number] = _answer_value(
                answers[0], spec_item, f"{here}.answer[0]", problems, code
            )
    if len(problems) > before:
        return None
    return PromResponse(
        resource_id=key,
        instrument=code,
        subject=subject,
        authored=model.authored,
        values=values,
        status=str(model.status),
        timepoint=timepoint_of(model),
    )
