"""FHIR R4 Questionnaire, QuestionnaireResponse, AdverseEvent: round trips, errors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from instruments.ctcae import Attribution, CtcaeVersion
from instruments.errors import FhirError, GradeError, WordingFileError
from instruments.fhir import (
    PSEUDONYM_SYSTEM,
    QLQ_C30_QUESTIONNAIRE_URL,
    PromResponse,
    SubjectIdentifier,
    bundle,
    parse_questionnaire_responses,
    questionnaire,
    questionnaire_response,
)
from instruments.fhir_adverse_event import (
    CTCAE_GRADE_EXTENSION_URL,
    ToxicityGrading,
    adverse_event,
    adverse_event_bundle,
    parse_adverse_events,
)
from instruments.qlq_c30 import QLQ_C30
from instruments.registry import get_instrument
from instruments.wording import load_wording

HOSPITAL = SubjectIdentifier("urn:oid:1.2.3.4", "H-000123")
PSEUDO = SubjectIdentifier(PSEUDONYM_SYSTEM, "PX7Q")


def random_response(rng: np.random.Generator, rid: str) -> PromResponse:
    values: dict[int, int | None] = {}
    for n in range(1, 31):
        if rng.random() < 0.2:
            values[n] = None
        else:
            values[n] = int(rng.integers(1, 8 if n >= 29 else 5))
    return PromResponse(
        resource_id=rid,
        instrument="QLQ-C30",
        subject=PSEUDO if rng.random() < 0.5 else HOSPITAL,
        authored=datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        values=values,
        timepoint=["baseline", "m3", None][int(rng.integers(0, 3))],
    )


def test_questionnaire_structure_and_validity():
    q = questionnaire("QLQ-C30")
    Questionnaire.model_validate(q)
    assert q["url"] == QLQ_C30_QUESTIONNAIRE_URL
    assert [i["linkId"] for i in q["item"]] == [f"q{n}" for n in range(1, 31)]
    for item in q["item"]:
        top = 7 if item["linkId"] in {"q29", "q30"} else 4
        codes = [o["valueCoding"]["code"] for o in item["answerOption"]]
        assert codes == [str(v) for v in range(1, top + 1)]
    assert q["item"][8]["text"] == "Item 9 (pain)"


def test_questionnaire_carries_no_eortc_wording():
    # Every text is our neutral label: "Item N (<label from the shipped CSV>)".
    labels = {i.number: i.label for i in get_instrument("QLQ-C30").spec.items}
    for item in questionnaire()["item"]:
        n = int(item["linkId"][1:])
        assert item["text"] == f"Item {n} ({labels[n]})"
        assert "?" not in item["text"]


def test_questionnaire_with_site_wording(tmp_path: Path):
    path = tmp_path / "wording.csv"
    path.write_text("item,language,text\nq1,de,SITE TEXT ONE\n2,de,SITE TEXT TWO\n")
    wording = load_wording(path, QLQ_C30)
    q = questionnaire(wording=wording, language="de-CH")
    assert q["item"][0]["text"] == "SITE TEXT ONE"
    assert q["item"][1]["text"] == "SITE TEXT TWO"
    assert q["item"][2]["text"].startswith("Item 3")
    assert q["language"] == "de-CH"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("item,language\n1,en\n", "missing column 'text'"),
        ("item,language,text\n31,en,x\n", "line 2 item: QLQ-C30 has no item '31'"),
        ("item,language,text\n1,,x\n", "line 2 language: empty"),
        ("item,language,text\n1,en,a\n1,en,b\n", "line 3: item 1 given twice"),
    ],
)
def test_bad_wording_file(tmp_path: Path, content, message):
    path = tmp_path / "w.csv"
    path.write_text(content)
    with pytest.raises(WordingFileError, match=message):
        load_wording(path, QLQ_C30)


def test_questionnaire_response_round_trip_single_and_bundle():
    rng = np.random.default_rng(11)
    responses = [random_response(rng, f"r{i}") for i in range(25)]
    for response in responses:
        exported = questionnaire_response(response)
        QuestionnaireResponse.model_validate(exported)
        assert parse_questionnaire_responses(json.dumps(exported)) == [response]
    parsed = parse_questionnaire_responses(
        bundle([questionnaire_response(r) for r in responses])
    )
    assert parsed == responses
    np.testing.assert_array_equal(
        parsed[0].as_row(),
        [np.nan if v is None else v for v in responses[0].values.values()],
    )


def test_same_resource_twice_is_read_once():
    r = random_response(np.random.default_rng(1), "dup")
    qr = questionnaire_response(r)
    assert parse_questionnaire_responses(bundle([qr, qr])) == [r]
    changed = copy.deepcopy(qr)
    changed["item"][0]["answer"][0]["valueCoding"]["code"] = "4"
    changed["item"][0]["linkId"] = "q1"
    r1 = copy.deepcopy(qr)
    r1["item"][0] = {"linkId": "q1", "answer": [{"valueInteger": 1}]}
    with pytest.raises(FhirError, match="sent twice, differently"):
        parse_questionnaire_responses(bundle([r1, changed]))


def base_qr() -> dict:
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "qr-1",
        "status": "completed",
        "questionnaire": QLQ_C30_QUESTIONNAIRE_URL,
        "subject": {"identifier": {"system": "urn:oid:1.2.3", "value": "H1"}},
        "item": [
            {"linkId": "q1", "answer": [{"valueInteger": 2}]},
            {"linkId": "q29", "answer": [{"valueCoding": {"code": "6"}}]},
        ],
    }


def test_hospital_identifier_is_returned_for_the_caller_to_pseudonymise():
    (parsed,) = parse_questionnaire_responses(base_qr())
    assert parsed.subject == SubjectIdentifier("urn:oid:1.2.3", "H1")
    assert not parsed.subject.is_pseudonym
    assert "H1" not in repr(parsed.subject)
    assert parsed.values[1] == 2
    assert parsed.values[29] == 6
    assert parsed.values[2] is None


def test_nested_groups_are_read():
    qr = base_qr()
    qr["item"] = [{"linkId": "page1", "item": qr["item"]}]
    (parsed,) = parse_questionnaire_responses(qr)
    assert parsed.values[29] == 6


def _mutate(path_value):
    qr = base_qr()
    path, value = path_value
    target = qr
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return qr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            (("questionnaire",), "https://example.org/Questionnaire/other"),
            "QuestionnaireResponse.questionnaire: unknown questionnaire",
        ),
        (
            (("questionnaire",), QLQ_C30_QUESTIONNAIRE_URL + "|2.0"),
            "version '2.0' of QLQ-C30 is unknown",
        ),
        (
            (("item", 0, "linkId"), "q31"),
            "QuestionnaireResponse.item[0].linkId: unknown linkId 'q31'",
        ),
        (
            (("item", 0, "answer", 0), {"valueInteger": 5}),
            "item[0].answer[0].valueInteger: item q1 value 5 is outside the allowed"
            " range 1-4",
        ),
        (
            (("item", 1, "answer", 0), {"valueCoding": {"code": "8"}}),
            "item[1].answer[0].valueCoding.code: item q29 value 8 is outside",
        ),
        (
            (("item", 1, "answer", 0), {"valueCoding": {"code": "abc"}}),
            "valueCoding.code: item q29 value 'abc' is not a number",
        ),
        (
            (("item", 0, "answer", 0), {"valueDecimal": 2.5}),
            "valueDecimal: item q1 value 2.5 is not an integer",
        ),
        (
            (("item", 0, "answer", 0), {"valueString": "2"}),
            "item[0].answer[0]: expected valueCoding or valueInteger",
        ),
        (
            (("item", 0, "answer", 0), {"valueInteger": "two"}),
            "QuestionnaireResponse.item[0].answer[0].valueInteger: Input should be",
        ),
        (
            (("subject",), {"reference": "Patient/1"}),
            "QuestionnaireResponse.subject.identifier: missing",
        ),
        ((("status",), "in-progress"), "status: 'in-progress' is not completed"),
        ((("id",), KeyError), "QuestionnaireResponse.id: missing"),
        ((("bogus",), 1), "QuestionnaireResponse.bogus: Extra inputs"),
    ],
)
def test_bad_questionnaire_responses(change, message):
    with pytest.raises(FhirError) as info:
        parse_questionnaire_responses(_mutate(change))
    assert any(message in p for p in info.value.problems), info.value.problems


def test_bad_json_and_wrong_resource_types():
    with pytest.raises(FhirError, match=r"\$: malformed JSON"):
        parse_questionnaire_responses("{not json")
    with pytest.raises(FhirError, match="expected QuestionnaireResponse or Bundle"):
        parse_questionnaire_responses({"resourceType": "Patient"})
    with pytest.raises(FhirError, match=r"Bundle.entry\[1\].resource.resourceType"):
        parse_questionnaire_responses(bundle([base_qr(), {"resourceType": "Patient"}]))


def test_one_bad_entry_rejects_the_whole_bundle():
    good = base_qr()
    bad = base_qr()
    bad["id"] = "qr-2"
    bad["item"][0]["answer"][0]["valueInteger"] = 9
    with pytest.raises(FhirError, match=r"Bundle.entry\[1\].resource.item\[0\]"):
        parse_questionnaire_responses(bundle([good, bad]))


def grading(**overrides) -> ToxicityGrading:
    fields = {
        "resource_id": "ae-1",
        "subject": PSEUDO,
        "version": "5.0",
        "term": "Dry mouth",
        "grade": 2,
        "assessed_on": date(2024, 6, 3),
        "attribution": Attribution.PROBABLE,
    }
    return ToxicityGrading(**(fields | overrides))


@pytest.mark.parametrize(
    "g",
    [
        grading(),
        grading(resource_id="ae-2", grade=0, attribution=None),
        grading(resource_id="ae-3", term="Pneumonitis", grade=5, version="6.0"),
        grading(resource_id="ae-4", term="Alopecia", grade=1, subject=HOSPITAL),
        grading(resource_id="ae-5", timepoint="m3"),
    ],
)
def test_adverse_event_round_trip(g):
    exported = adverse_event(g)
    AdverseEvent.model_validate(exported)
    assert exported["extension"][0] == {
        "url": CTCAE_GRADE_EXTENSION_URL,
        "valueInteger": g.grade,
    }
    assert exported["actuality"] == ("actual" if g.grade else "potential")
    assert parse_adverse_events(json.dumps(exported)) == [g]


def test_adverse_event_bundle_round_trip():
    gradings = [grading(resource_id=f"ae-{g}", grade=g) for g in range(4)]
    assert parse_adverse_events(adverse_event_bundle(gradings)) == gradings


def test_grading_validates_on_construction():
    with pytest.raises(GradeError, match="grades 1\u20132 for Alopecia"):
        grading(term="Alopecia", grade=3)
    g = grading(term="dry MOUTH", version=CtcaeVersion.V5_0)
    assert g.term == "Dry mouth"
    assert g.meddra_code == "10013781"


def _ae(**changes) -> dict:
    resource = adverse_event(grading())
    resource.update(changes)
    return resource


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            _ae(extension=[{"url": CTCAE_GRADE_EXTENSION_URL, "valueInteger": 4}]),
            "AdverseEvent.extension[0].valueInteger: CTCAE v5.0 defines"
            " grades 1\u20133 for Dry mouth",
        ),
        (_ae(extension=[]), "AdverseEvent.extension: missing"),
        (
            _ae(
                event={
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/mdr",
                            "code": "99999999",
                        }
                    ]
                }
            ),
            "AdverseEvent.event.coding[0].code: CTCAE v5.0 has no term '99999999'",
        ),
        (
            _ae(
                event={
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/mdr",
                            "code": "10013781",
                            "display": "Alopecia",
                        }
                    ]
                }
            ),
            "AdverseEvent.event.coding[0].display: 'Alopecia' is not the CTCAE",
        ),
        (_ae(event={"text": "Xerostomia"}), "did you mean 'Dry mouth'"),
        (_ae(date=None), "AdverseEvent.date: missing"),
        (
            _ae(subject={"display": "someone"}),
            "AdverseEvent.subject.identifier: missing",
        ),
    ],
)
def test_bad_adverse_events(resource, message):
    resource = {k: v for k, v in resource.items() if v is not None}
    with pytest.raises(FhirError) as info:
        parse_adverse_events(resource)
    assert any(message in p for p in info.value.problems), info.value.problems


def test_adverse_event_unknown_attribution_and_version():
    resource = adverse_event(grading())
    coding = resource["suspectEntity"][0]["causality"][0]["assessment"]["coding"][0]
    coding["code"] = "maybe"
    with pytest.raises(FhirError, match=r"coding\[0\].code: unknown attribution"):
        parse_adverse_events(resource)
    resource = adverse_event(grading())
    resource["extension"][1]["valueString"] = "4.03"
    with pytest.raises(FhirError, match=r"extension\[1\].valueString: unknown CTCAE"):
        parse_adverse_events(resource)


def test_adverse_event_text_only_and_datetime():
    resource = adverse_event(grading())
    del resource["event"]["coding"]
    resource["date"] = "2024-06-03T14:00:00+02:00"
    (parsed,) = parse_adverse_events(resource)
    assert parsed.term == "Dry mouth"
    assert parsed.assessed_on == date(2024, 6, 3)
