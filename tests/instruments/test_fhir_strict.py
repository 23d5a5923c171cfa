"""Strict FHIR reading: coding systems, size and depth bounded before parsing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest

from instruments.errors import FhirError
from instruments.fhir import (
    PSEUDONYM_SYSTEM,
    PromResponse,
    SubjectIdentifier,
    bundle,
    parse_questionnaire_responses,
    questionnaire,
    questionnaire_response,
)
from instruments.fhir_adverse_event import (
    MEDDRA_SYSTEM,
    ToxicityGrading,
    adverse_event,
    parse_adverse_events,
)
from instruments.fhir_limits import MAX_JSON_DEPTH, check_json_bounds, json_depth
from instruments.qlq_c30 import QLQ_C30

LOINC = "http://loinc.org"
PSEUDO = SubjectIdentifier(PSEUDONYM_SYSTEM, "PX7Q")


def written_response() -> dict[str, Any]:
    """A QuestionnaireResponse made by the project's own writer."""
    values = {i.number: i.response_min + 1 for i in QLQ_C30.items}
    response = PromResponse(
        "qr-1", "QLQ-C30", PSEUDO, datetime(2024, 5, 1, 9, tzinfo=UTC), values
    )
    return questionnaire_response(response)


def written_event() -> dict[str, Any]:
    grading = ToxicityGrading(
        "ae-1", PSEUDO, "5.0", "Dry mouth", 2, date(2024, 5, 1), "probable"
    )
    return adverse_event(grading)


def problems_of(call, *args, **kwargs) -> list[str]:
    with pytest.raises(FhirError) as info:
        call(*args, **kwargs)
    return info.value.problems


def test_written_response_reads_back_and_questionnaire_codes_have_no_system():
    options = [o for i in questionnaire()["item"] for o in i["answerOption"]]
    assert all("system" not in o["valueCoding"] for o in options)
    (parsed,) = parse_questionnaire_responses(written_response())
    assert parsed.values[1] == 2
    assert parsed.values[29] == 2


@pytest.mark.parametrize("system", [LOINC, "http://snomed.info/sct"])
def test_coding_of_another_system_is_refused(system):
    qr = written_response()
    qr["item"][2]["answer"][0]["valueCoding"] = {"system": system, "code": "3"}
    found = problems_of(parse_questionnaire_responses, qr, source="prom.json")
    assert found == [
        "prom.json: QuestionnaireResponse.item[2].answer[0].valueCoding.system:"
        f" item q3 coding system {system!r} is not the Questionnaire's"
        " (expected no system)"
    ]


def test_code_that_is_not_an_answer_option_is_refused():
    qr = written_response()
    qr["item"][0]["answer"][0]["valueCoding"]["code"] = "3.0"
    (problem,) = problems_of(parse_questionnaire_responses, qr)
    assert problem == (
        "QuestionnaireResponse.item[0].answer[0].valueCoding.code: item q1 code '3.0'"
        " is not an answer option of the Questionnaire (1-4)"
    )


def test_every_bad_coding_of_a_bundle_is_reported():
    first, second = written_response(), written_response()
    second["id"] = "qr-2"
    second["item"][28]["answer"][0]["valueCoding"]["system"] = LOINC
    first["item"][5]["answer"][0]["valueCoding"]["system"] = LOINC
    found = problems_of(
        parse_questionnaire_responses, json.dumps(bundle([first, second]))
    )
    assert [p.split(":")[0] for p in found] == [
        "Bundle.entry[0].resource.item[5].answer[0].valueCoding.system",
        "Bundle.entry[1].resource.item[28].answer[0].valueCoding.system",
    ]
    assert "item q6" in found[0] and "item q29" in found[1]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _depth_of(value: Any) -> int:  # independent truth: recursion on the parsed value
    if isinstance(value, dict):
        return 1 + max((_depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth_of(v) for v in value), default=0)
    return 0


def test_json_depth_matches_the_parsed_structure_and_skips_strings():
    rng = np.random.default_rng(13)
    for _ in range(50):
        value: Any = int(rng.integers(10))
        for _level in range(int(rng.integers(0, 12))):
            kind = rng.integers(3)
            if kind == 0:
                value = [value, 'x]"}{[\\"', 1]
            elif kind == 1:
                value = {"k[": value, "z": "}}}\\\\"}
            else:
                value = [{"a": "[" * 5}, [value]]
        text = json.dumps(value).encode()
        assert json_depth(text) == _depth_of(value)
    written = json.dumps(bundle([written_response()])).encode()
    assert json_depth(written) == _depth_of(json.loads(written))


@pytest.mark.parametrize("parse", [parse_questionnaire_responses, parse_adverse_events])
def test_deep_nesting_is_refused_before_parsing(parse):
    resource = written_response() if parse is parse_questionnaire_responses else None
    resource = resource or written_event()
    text = json.dumps(resource)
    # 3,000 levels inside a real resource: json.loads would raise RecursionError
    deep = text[:-1] + ', "extension": ' + nested(3000) + "}"
    found = problems_of(parse, deep, source="deep.json")
    assert found == [
        f"deep.json: $: JSON nested deeper than {MAX_JSON_DEPTH} levels"
        " (refused before parsing)"
    ]
    with pytest.raises(RecursionError):
        json.loads(deep)


def test_size_is_refused_before_parsing():
    text = json.dumps(bundle([written_response()] * 3))
    with pytest.raises(FhirError, match="larger than the limit of 1,000 bytes"):
        check_json_bounds(text, source="big.json", max_bytes=1000)
    assert check_json_bounds(text) == text.encode()


def test_an_unterminated_string_does_not_hide_brackets_or_crash():
    assert json_depth(b'[[ "abc') == 2
    found = problems_of(parse_questionnaire_responses, '{"a": "unterminated')
    assert found[0].startswith("$: malformed JSON")


def test_adverse_event_coding_without_system_is_refused():
    ae = written_event()
    del ae["event"]["coding"][0]["system"]
    (problem,) = problems_of(parse_adverse_events, ae, source="tox.json")
    assert problem.startswith("tox.json: AdverseEvent.event.coding[0].system: missing")


def test_adverse_event_foreign_coding_display_is_not_read_as_the_term():
    ae = written_event()
    ae["event"] = {"coding": [{"system": LOINC, "code": "x", "display": "Dry mouth"}]}
    (problem,) = problems_of(parse_adverse_events, ae)
    assert problem == "AdverseEvent.event: no MedDRA coding and no text"
    # a translation next to the MedDRA coding is fine
    ae = written_event()
    ae["event"]["coding"].insert(0, {"system": LOINC, "code": "x"})
    (parsed,) = parse_adverse_events(ae)
    assert parsed.term == "Dry mouth"
    assert ae["event"]["coding"][1]["system"] == MEDDRA_SYSTEM


def test_adverse_event_attribution_in_another_system_is_refused():
    ae = written_event()
    coding = ae["suspectEntity"][0]["causality"][0]["assessment"]["coding"][0]
    coding["system"] = LOINC
    (problem,) = problems_of(parse_adverse_events, copy.deepcopy(ae))
    assert problem.startswith(
        "AdverseEvent.suspectEntity[0].causality[0].assessment.coding: system"
        f" '{LOINC}' is not"
    )
