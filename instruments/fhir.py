"""FHIR R4 exchange of questionnaires: Questionnaire, QuestionnaireResponse, Bundle.

Resources are validated with the R4B models of ``fhir.resources`` (R4B reads R4 JSON for
these resources). The QLQ-C30 ``Questionnaire`` has the canonical URL
:data:`QLQ_C30_QUESTIONNAIRE_URL`, one item per question with linkId ``q1`` ... ``q30``
and ``answerOption`` codings ``1``-``4`` (``1``-``7`` for q29-q30); its texts are
neutral labels unless a site wording file is given (no EORTC wording ships).

A ``QuestionnaireResponse`` is read into a :class:`PromResponse`: the answers by item
number, the patient as the ``subject`` identifier (a hospital identifier, which the
caller pseudonymises with the centre key, or our pseudonym under
:data:`PSEUDONYM_SYSTEM`), and an idempotency key from the resource id. Every problem is
reported with its resource path and field; one bad resource rejects the whole input.

Examples
--------
>>> q = questionnaire("QLQ-C30")
>>> q["url"] == QLQ_C30_QUESTIONNAIRE_URL, q["item"][0]["linkId"]
(True, 'q1')
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import pydantic
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from instruments.errors import FhirError, InstrumentError
from instruments.fhir_limits import check_json_bounds
from instruments.registry import get_instrument
from instruments.scoring import InstrumentSpec, ItemSpec
from instruments.wording import Wording

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
    "read_resources",
    "resource_key",
    "subject_of",
    "timepoint_extension",
    "timepoint_of",
    "validate_model",
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

_ACCEPTED_STATUS = ("completed", "amended")

M = TypeVar("M", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class SubjectIdentifier:
    """The patient of a resource as a FHIR identifier (system and value).

    ``value`` may be a direct hospital identifier: never log it; pseudonymise it with
    the centre key unless :attr:`is_pseudonym`.
    """

    system: str
    value: str

    @property
    def is_pseudonym(self) -> bool:
        """Whether the value is already an rtcohort pseudonym."""
        return self.system == PSEUDONYM_SYSTEM

    def as_fhir(self) -> dict[str, Any]:
        """Return the ``Reference`` JSON of this subject."""
        return {"identifier": {"system": self.system, "value": self.value}}

    def __repr__(self) -> str:  # keep identifiers out of logs and tracebacks
        shown = self.value if self.is_pseudonym else "***"
        return f"SubjectIdentifier(system={self.system!r}, value={shown!r})"


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


def load_json(data: str | bytes | Mapping[str, Any], *, source: str = "$") -> Any:
    """Parse JSON text (or pass a mapping through), naming ``source`` when malformed.

    Size and nesting depth are checked before parsing
    (:func:`instruments.fhir_limits.check_json_bounds`).
    """
    if isinstance(data, Mapping):
        return dict(data)
    raw = check_json_bounds(data, source=source)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FhirError([f"{source}: malformed JSON ({exc})"]) from None
    except RecursionError:  # pragma: no cover - the depth bound comes first
        raise FhirError([f"{source}: JSON nested too deeply"]) from None


def iter_resources(
    document: Any, resource_type: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(path, resource)`` of ``resource_type`` from one resource or a Bundle.

    Raises
    ------
    FhirError
        If the document is neither, or a Bundle entry holds another resource type.
    """
    if not isinstance(document, dict):
        raise FhirError(["$: expected a JSON object (a FHIR resource)"])
    kind = document.get("resourceType")
    if kind == resource_type:
        yield resource_type, document
        return
    if kind != "Bundle":
        raise FhirError(
            [f"$.resourceType: expected {resource_type} or Bundle, got {kind!r}"]
        )
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError(["Bundle.entry: expected a list"])
    problems = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        path = f"Bundle.entry[{i}].resource"
        if not isinstance(resource, dict):
            problems.append(f"{path}: missing")
        elif resource.get("resourceType") != resource_type:
            problems.append(
                f"{path}.resourceType: expected {resource_type},"
                f" got {resource.get('resourceType')!r}"
            )
        else:
            yield path, resource
    if problems:
        raise FhirError(problems)


def validate_model(
    model: type[M], resource: dict[str, Any], path: str, problems: list[str]
) -> M | None:
    """Validate ``resource`` with a fhir.resources model; add problems with paths."""
    try:
        return model.model_validate(resource)
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            loc = "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]
            )
            problems.append(f"{path}{loc}: {error['msg']}")
        return None


def resource_key(resource: pydantic.BaseModel, path: str, problems: list[str]) -> str:
    """Return the idempotency key of a resource: its id, else its first identifier."""
    rid = getattr(resource, "id", None)
    if rid:
        return str(rid)
    identifiers: Any = getattr(resource, "identifier", None)
    if isinstance(identifiers, list):
        identifiers = identifiers[0] if identifiers else None
    first: Any = identifiers
    if first is not None and first.value:
        return f"{first.system or ''}|{first.value}"
    problems.append(
        f"{path}.id: missing (an id or identifier is needed to deduplicate)"
    )
    return ""


def subject_of(resource: Any, path: str, problems: list[str]) -> SubjectIdentifier:
    """Return the ``subject`` identifier of a resource; add a problem if missing."""
    identifier = resource.subject.identifier if resource.subject else None
    if identifier is None or not identifier.system or not identifier.value:
        problems.append(
            f"{path}.subject.identifier: missing system or value (a Patient identifier"
            " or an rtcohort pseudonym is needed)"
        )
        return SubjectIdentifier("", "")
    return SubjectIdentifier(str(identifier.system), str(identifier.value))


def timepoint_extension(code: str) -> dict[str, Any]:
    """Return the extension JSON that names a follow-up timepoint."""
    return {"url": TIMEPOINT_EXTENSION_URL, "valueCode": code}


def timepoint_of(resource: Any) -> str | None:
    """Return the timepoint code of a resource's timepoint extension, if any."""
    for ext in resource.extension or []:
        if ext.url == TIMEPOINT_EXTENSION_URL and (ext.valueCode or ext.valueString):
            return str(ext.valueCode or ext.valueString)
    return None


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
        :data:`QUESTIONNAIRE_URLS` can be exported.
    wording, language
        Site-supplied wording; without it the item texts are neutral labels.
    """
    url = _url_of(code)
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


def _url_of(code: str) -> str:
    for url, known in QUESTIONNAIRE_URLS.items():
        if known == code.strip().upper():
            return url
    raise InstrumentError(f"no FHIR Questionnaire is defined for {code!r}")


def questionnaire_response(response: PromResponse) -> dict[str, Any]:
    """Return the FHIR R4 ``QuestionnaireResponse`` JSON of a completed questionnaire.

    Unanswered items are left out; answers are ``valueCoding`` as in the Questionnaire.
    """
    spec = get_instrument(response.instrument).spec
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": response.resource_id,
        "questionnaire": f"{_url_of(spec.code)}|{spec.version}",
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


def bundle(resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Wrap resources in a FHIR ``collection`` Bundle."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": dict(r)} for r in resources],
    }


class _HasResourceId(Protocol):
    @property
    def resource_id(self) -> str: ...


_Parsed = TypeVar("_Parsed", bound=_HasResourceId)


def read_resources(
    data: str | bytes | Mapping[str, Any],
    resource_type: str,
    model_class: type[Any],
    read: Callable[[Any, str, list[str]], _Parsed | None],
    *,
    source: str | None = None,
) -> list[_Parsed]:
    """Validate every resource of a type (single or Bundle) and read it with ``read``.

    All-or-nothing: every problem of every resource is collected, each naming its
    resource path, and raised together; one id sent twice with different content is a
    problem too. With ``source`` (a file name) every problem starts with it.

    Raises
    ------
    FhirError
        With the list of problems.
    """
    try:
        return _read_resources(data, resource_type, model_class, read)
    except FhirError as exc:
        if source is None:
            raise
        raise FhirError([f"{source}: {p}" for p in exc.problems]) from None


def _read_resources(
    data: str | bytes | Mapping[str, Any],
    resource_type: str,
    model_class: type[Any],
    read: Callable[[Any, str, list[str]], _Parsed | None],
) -> list[_Parsed]:
    problems: list[str] = []
    found: dict[str, _Parsed] = {}
    for path, raw in iter_resources(load_json(data), resource_type):
        model = validate_model(model_class, raw, path, problems)
        if model is None:
            continue
        parsed = read(model, path, problems)
        if parsed is None:
            continue
        earlier = found.get(parsed.resource_id)
        if earlier is not None and earlier != parsed:
            problems.append(
                f"{path}.id: {parsed.resource_id!r} sent twice, differently"
            )
        found[parsed.resource_id] = parsed
    if problems:
        raise FhirError(problems)
    return list(found.values())


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
