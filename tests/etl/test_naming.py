"""Structure-name mapping: precedence, wildcards, languages, suggestions, versions."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from etl.mapping.naming import (
    MappingError,
    MatchKind,
    Rule,
    RuleSet,
    current_rules,
    default_rules_text,
    import_rules,
    is_target,
    normalise_name,
    parse_rules_csv,
    structure_concept_id,
    suggest,
)
from omop.vocab.registry import our_concept_id

G = None  # global


def test_precedence_exact_over_wildcard_and_centre_over_global() -> None:
    rules = RuleSet(
        [
            Rule(G, "heart*", MatchKind.WILDCARD, "Heart", 1),
            Rule(G, "heartx", MatchKind.EXACT, "Lungs", 2),
            Rule("HUS", "heart?", MatchKind.WILDCARD, "Liver", 3),
            Rule(G, r"h.*", MatchKind.REGEX, "Stomach", 4),
        ]
    )
    assert (
        rules.map("HeartX").tg263_name == "Lungs"
    )  # global exact beats global wildcard
    assert rules.map("HeartX", "hus").tg263_name == "Liver"  # centre beats global
    assert (
        rules.map("Heart12", "HUS").tg263_name == "Heart"
    )  # centre rule does not match
    assert rules.map("hxx").tg263_name == "Stomach"  # regex last
    assert rules.map("hxx").rule is not None and rules.map("hxx").rule.rule_id == 4


def test_more_specific_wildcard_wins() -> None:
    rules = RuleSet(
        [Rule(G, "lung*", MatchKind.WILDCARD, "Lungs", 1),
         Rule(G, "lung?l*", MatchKind.WILDCARD, "Lung_L", 2)]
    )  # fmt: skip
    assert rules.map("Lung L upper").tg263_name == "Lung_L"
    assert rules.map("Lungs").tg263_name == "Lungs"


def test_question_mark_is_exactly_one_character() -> None:
    rules = RuleSet([Rule(G, "cord?", MatchKind.WILDCARD, "SpinalCord", 1)])
    assert rules.map("cord1").tg263_name == "SpinalCord"
    assert rules.map("cord").tg263_name is None
    assert rules.map("cord12").tg263_name is None


def test_normalisation() -> None:
    assert normalise_name("  HJÄRTA ") == "hjarta"
    assert normalise_name("Rygmarv_Højre") == "rygmarv hojre"
    assert (
        normalise_name("Lung-L") == normalise_name("lung l") == normalise_name("LUNG_L")
    )


@pytest.mark.parametrize(
    ("local", "tg263"),
    [
        ("Heart", "Heart"), ("Sydän", "Heart"), ("SYDAN", "Heart"), ("hjärta", "Heart"),
        ("Hjerte", "Heart"),
        ("Lung_L", "Lung_L"), ("Lung R", "Lung_R"), ("keuhko vas", "Lung_L"),
        ("Oikea keuhko", "Lung_R"), ("Lunga vä", "Lung_L"), ("Höger lunga", "Lung_R"),
        ("Venstre lunge", "Lung_L"), ("lunge dx", "Lung_R"), ("Lungs", "Lungs"),
        ("keuhkot", "Lungs"), ("selkäydin", "SpinalCord"), ("Ryggmärg", "SpinalCord"),
        ("rygmarv", "SpinalCord"), ("Spinal Cord", "SpinalCord"),
        ("ruokatorvi", "Esophagus"), ("Matstrupe", "Esophagus"), ("spiserør", "Esophagus"),
        ("Maksa", "Liver"), ("lever", "Liver"), ("Parotis sin", "Parotid_L"),
        ("Munuainen oik", "Kidney_R"), ("Njure hö", "Kidney_R"), ("Nyre venstre", "Kidney_L"),
        ("BODY", "Body"), ("External", "Body"), ("PTV", "PTV"), ("A_Aorta", "A_Aorta"),
        ("SpinalCord_PRV05", "SpinalCord_PRV05"),
    ],
)  # fmt: skip
def test_default_rules_cover_four_languages(local: str, tg263: str) -> None:
    rules = RuleSet(parse_rules_csv(default_rules_text()))
    assert rules.map(local).tg263_name == tg263


def test_default_rules_name_only_tg263_names() -> None:
    rules = parse_rules_csv(default_rules_text())
    assert len(rules) > 100
    assert all(structure_concept_id(r.tg263_name) for r in rules)


def test_unmapped_names_get_fuzzy_suggestions() -> None:
    rules = RuleSet([])
    assert rules.map("Hart").tg263_name is None
    assert "Heart" in suggest("Hart")
    assert "SpinalCord" in suggest("Spinal_Crd")
    assert suggest("zzzzqqq") == []


def test_concepts_and_targets() -> None:
    assert structure_concept_id("Heart") == our_concept_id("TG263", "Heart")
    assert structure_concept_id("SpinalCord_PRV03") == our_concept_id(
        "TG263", "SpinalCord_PRVxx"
    )
    assert structure_concept_id("NotAStructure") == 0
    assert structure_concept_id(None) == 0
    assert (
        is_target("PTV_High", None)
        and is_target(None, "CTV")
        and not is_target("Heart", "ORGAN")
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("centre,pattern,kind\n,a,exact\n", "missing column"),
        ("centre,pattern,kind,tg263_name\n,heart,fuzzy,Heart\n", "line 2: kind"),
        ("centre,pattern,kind,tg263_name\n,heart,exact,Hearts\n", "not a TG-263 name"),
        ("centre,pattern,kind,tg263_name\n,(,regex,Heart\n", "line 2: pattern"),
        ("centre,pattern,kind,tg263_name\n, ,exact,Heart\n", "pattern is empty"),
    ],
)
def test_bad_rule_files_name_line_and_field(text: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_rules_csv(text)


def test_rule_versions_newest_wins_and_empty_target_removes(session: Session) -> None:
    v1 = import_rules(
        session,
        parse_rules_csv("centre,pattern,kind,tg263_name\n,hrt,exact,Heart\n,lng,exact,Lungs\n"),
        source="a.csv", actor="test",
    )  # fmt: skip
    v2 = import_rules(
        session,
        parse_rules_csv("centre,pattern,kind,tg263_name\n,hrt,exact,Liver\n,lng,exact,\n"),
        source="b.csv", actor="test",
    )  # fmt: skip
    assert v2 == v1 + 1
    rules = current_rules(session)
    assert rules.version == v2
    assert rules.map("HRT").tg263_name == "Liver"
    assert rules.map("lng").tg263_name is None
