"""FHIR R4 exchange of CTCAE gradings as ``AdverseEvent`` resources.

Mapping (documented in ``docs/instruments.md``):

* ``event``: the CTCAE term as a MedDRA coding (system :data:`MEDDRA_SYSTEM`, code = the
  LLT code, display = the CTCAE term, version = the MedDRA version of the CTCAE
  release) and ``event.text`` = the CTCAE term;
* the grade (0-5) in the extension :data:`CTCAE_GRADE_EXTENSION_URL` (``valueInteger``),
  the CTCAE version in :data:`CTCAE_VERSION_EXTENSION_URL` (``valueString``);
* ``actuality``: ``actual`` for grades 1-5; grade 0 ("assessed, absent") is sent as
  ``potential``, because FHIR R4 has no "assessed and absent" event;
* ``date``: the assessment date;
* attribution to radiotherapy: ``suspectEntity[0]`` with ``instance.display`` =
  "Radiotherapy" and ``causality[0].assessment`` coded in :data:`ATTRIBUTION_SYSTEM`
  (``unrelated``, ``unlikely``, ``possible``, ``probable``, ``definite``);
* ``subject``: the patient identifier, as for QuestionnaireResponses.

Examples
--------
>>> from instruments.fhir import PSEUDONYM_SYSTEM, SubjectIdentifier
>>> g = ToxicityGrading("t1", SubjectIdentifier(PSEUDONYM_SYSTEM, "P1"), "5.0",
...                     "Dry mouth", 2, date(2024, 5, 1), "probable")
>>> parse_adverse_events(adverse_event(g)) == [g]
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.adverseevent import AdverseEvent

from instruments.ctcae import Attribution, CtcaeVersion, load_catalogue
from instruments.errors import InstrumentError
from instruments.fhir import (
    FHIR_BASE,
    SubjectIdentifier,
    bundle,
    read_resources,
    resource_key,
    subject_of,
    timepoint_extension,
    timepoint_of,
)

__all__ = [
    "ATTRIBUTION_SYSTEM",
    "CTCAE_GRADE_EXTENSION_URL",
    "CTCAE_VERSION_EXTENSION_URL",
    "MEDDRA_SYSTEM",
    "ToxicityGrading",
    "adverse_event",
    "adverse_event_bundle",
    "parse_adverse_events",
]

#: Extension carrying the CTCAE grade (``valueInteger`` 0-5) on ``AdverseEvent``.
CTCAE_GRADE_EXTENSION_URL = f"{FHIR_BASE}/StructureDefinition/ctcae-grade"
#: Extension carrying the CTCAE version (``valueString`` "5.0" or "6.0").
CTCAE_VERSION_EXTENSION_URL = f"{FHIR_BASE}/StructureDefinition/ctcae-version"
#: Code system of the attribution to radiotherapy.
ATTRIBUTION_SYSTEM = f"{FHIR_BASE}/CodeSystem/rt-attribution"
#: HL7 code system URL of MedDRA.
MEDDRA_SYSTEM = "http://terminology.hl7.org/CodeSystem/mdr"
_MEDDRA_VERSION = {CtcaeVersion.V5_0: "20.1", CtcaeVersion.V6_0: "28.0"}
_RADIOTHERAPY = "Radiotherapy"


@dataclass(frozen=True)
class ToxicityGrading:
    """One CTCAE grading of one term for one patient on one date.

    Attributes
    ----------
    resource_id
        Idempotency key (the AdverseEvent id).
    subject
        The patient.
    version
        CTCAE version.
    term
        CTCAE term (normalised to the catalogue's spelling).
    grade
        0 ("assessed, absent") to 5.
    assessed_on
        Date of the assessment.
    attribution
        Attribution to radiotherapy, if assessed.
    timepoint
        Follow-up timepoint code (extension ``TIMEPOINT_EXTENSION_URL``), if sent.
    """

    resource_id: str
    subject: SubjectIdentifier
    version: CtcaeVersion | str
    term: str
    grade: int
    assessed_on: date
    attribution: Attribution | str | None = None
    timepoint: str | None = None

    def __post_init__(self) -> None:
        version = CtcaeVersion.parse(self.version)
        entry, grade = load_catalogue(version).validate(self.term, self.grade)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "term", entry.term)
        object.__setattr__(self, "grade", grade)
        if self.attribution is not None:
            object.__setattr__(self, "attribution", Attribution.parse(self.attribution))

    @property
    def meddra_code(self) -> str:
        """MedDRA LLT code of the term."""
        return load_catalogue(self.version).term(self.term).meddra_code


def adverse_event(grading: ToxicityGrading) -> dict[str, Any]:
    """Return the FHIR R4 ``AdverseEvent`` JSON of a CTCAE grading."""
    version = CtcaeVersion.parse(grading.version)
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": grading.resource_id,
        "extension": [
            {"url": CTCAE_GRADE_EXTENSION_URL, "valueInteger": grading.grade},
            {"url": CTCAE_VERSION_EXTENSION_URL, "valueString": version.value},
        ],
        "actuality": "actual" if grading.grade > 0 else "potential",
        "event": {
            "coding": [
                {
                    "system": MEDDRA_SYSTEM,
                    "version": _MEDDRA_VERSION[version],
                    "code": grading.meddra_code,
                    "display": grading.term,
                }
            ],
            "text": grading.term,
        },
        "subject": grading.subject.as_fhir(),
        "date": grading.assessed_on.isoformat(),
    }
    if grading.timepoint is not None:
        resource["extension"].append(timepoint_extension(grading.timepoint))
    if grading.attribution is not None:
        code = Attribution.parse(grading.attribution)
        resource["suspectEntity"] = [
            {
                "instance": {"display": _RADIOTHERAPY},
                "causality": [
                    {
                        "assessment": {
                            "coding": [
                                {
                                    "system": ATTRIBUTION_SYSTEM,
                                    "code": code.value,
                                    "display": code.value.capitalize(),
                                }
                            ]
                        }
                    }
                ],
            }
        ]
    return resource


def parse_adverse_events(
    data: str | bytes | Mapping[str, Any],
    *,
    default_version: CtcaeVersion | str = CtcaeVersion.V5_0,
    source: str | None = None,
) -> list[ToxicityGrading]:
    """Read and validate AdverseEvents (one resource or a Bundle) as CTCAE gradings.

    Parameters
    ----------
    data
        JSON text (size and nesting depth bounded before parsing, see
        :mod:`instruments.fhir_limits`) or a parsed resource.
    default_version
        CTCAE version for resources without the version extension.
    source
        Name of the input (a file name): every problem starts with it.

    Raises
    ------
    FhirError
        With every problem, each naming resource path and field: malformed JSON, a
        missing or repeated grade extension, an unknown term or MedDRA code, a grade the
        term does not define, a missing date or subject, an unknown attribution code,
        an ``event`` or attribution coding without a system, an attribution coded only
        in systems other than :data:`ATTRIBUTION_SYSTEM`, a document too large or
        nested too deeply.
    """
    return read_resources(
        data,
        "AdverseEvent",
        AdverseEvent,
        lambda model, path, problems: _read_event(
            model, path, problems, default_version
        ),
        source=source,
    )


def _extension(
    model: Any, url: str, field: str, path: str, problems: list[str]
) -> tuple[Any, str]:
    hits = [(i, e) for i, e in enumerate(model.extension or []) if e.url == url]
    if len(hits) > 1:
        problems.append(f"{path}.extension: {url} given {len(hits)} times")
    if not hits:
        return None, f"{path}.extension"
    i, ext = hits[0]
    return getattr(ext, field), f"{path}.extension[{i}].{field}"


def _read_event(
    model: AdverseEvent,
    path: str,
    problems: list[str],
    default_version: CtcaeVersion | str,
) -> ToxicityGrading | None:
    before = len(problems)
    key = resource_key(model, path, problems)
    subject = subject_of(model, path, problems)
    raw_version, version_path = _extension(
        model, CTCAE_VERSION_EXTENSION_URL, "valueString", path, problems
    )
    try:
        catalogue = load_catalogue(raw_version or default_version)
    except InstrumentError as exc:
        problems.append(f"{version_path}: {exc}")
        return None
    grade, grade_path = _extension(
        model, CTCAE_GRADE_EXTENSION_URL, "valueInteger", path, problems
    )
    if grade is None:
        problems.append(
            f"{grade_path}: missing {CTCAE_GRADE_EXTENSION_URL} (valueInteger)"
        )
    term_name = _term_of(model, catalogue, path, problems)
    if term_name is not None and grade is not None:
        problem = catalogue.grade_problem(term_name, grade)
        if problem:
            problems.append(f"{grade_path}: {problem}")
    when = model.date
    if when is None:
        problems.append(f"{path}.date: missing (the assessment date)")
    attribution = _attribution_of(model, path, problems)
    if len(problems) > before or term_name is None or when is None:
        return None
    return ToxicityGrading(
        resource_id=key,
        subject=subject,
        version=catalogue.version,
        term=term_name,
        grade=int(grade),
        assessed_on=when.date() if isinstance(when, datetime) else when,
        attribution=attribution,
        timepoint=timepoint_of(model),
    )


def _term_of(model: Any, catalogue: Any, path: str, problems: list[str]) -> str | None:
    event = model.event
    if event is None:
        problems.append(f"{path}.event: missing (the CTCAE term)")
        return None
    for i, coding in enumerate(event.coding or []):
        if not coding.system:
            problems.append(
                f"{path}.event.coding[{i}].system: missing (a CTCAE term is coded in"
                f" {MEDDRA_SYSTEM}; a code without a system cannot be read)"
            )
            return None
    for i, coding in enumerate(event.coding or []):
        if coding.system == MEDDRA_SYSTEM and coding.code:
            where = f"{path}.event.coding[{i}]"
            try:
                entry = catalogue.term(str(coding.code))
            except InstrumentError as exc:
                problems.append(f"{where}.code: {exc}")
                return None
            for label in (coding.display, event.text):
                if label and str(label).casefold() != entry.term.casefold():
                    problems.append(
                        f"{where}.display: {label!r} is not the CTCAE"
                        f" v{catalogue.version} term of MedDRA {coding.code}"
                        f" ({entry.term!r})"
                    )
                    return None
            return str(entry.term)
    name = event.text  # never the display of another code system's coding
    if not name:
        problems.append(f"{path}.event: no MedDRA coding and no text")
        return None
    try:
        return str(catalogue.term(str(name)).term)
    except InstrumentError as exc:
        problems.append(f"{path}.event.text: {exc}")
        return None


def _attribution_of(model: Any, path: str, problems: list[str]) -> Attribution | None:
    for i, suspect in enumerate(model.suspectEntity or []):
        for j, causality in enumerate(suspect.causality or []):
            assessment = causality.assessment
            where = f"{path}.suspectEntity[{i}].causality[{j}].assessment"
            codings = list(assessment.coding or []) if assessment else []
            if codings and all(c.system != ATTRIBUTION_SYSTEM for c in codings):
                systems = ", ".join(repr(c.system) for c in codings)
                problems.append(
                    f"{where}.coding: system {systems} is not {ATTRIBUTION_SYSTEM}"
                    " (the attribution cannot be read)"
                )
                return None
            for k, coding in enumerate(codings):
                if coding.system != ATTRIBUTION_SYSTEM:
                    continue
                try:
                    return Attribution.parse(str(coding.code))
                except InstrumentError as exc:
                    problems.append(f"{where}.coding[{k}].code: {exc}")
                    return None
    return None


def adverse_event_bundle(gradings: Sequence[ToxicityGrading]) -> dict[str, Any]:
    """Export gradings as a FHIR ``collection`` Bundle of AdverseEvents."""
    return bundle([adverse_event(g) for g in gradings])
