"""TG-263 target names follow a grammar: recognised without a rule, in TG-263 casing."""

from __future__ import annotations

import pytest

from etl.mapping.naming import MappingError, RuleSet, parse_rules_csv
from etl.mapping.targets import tg263_target_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PTV_High", "PTV_High"),
        ("ptv_low", "PTV_Low"),
        ("PTV_Mid01", "PTV_Mid01"),
        ("CTVn_7000", "CTVn_7000"),
        ("GTVp", "GTVp"),
        ("PTV1", "PTV1"),
        ("PTVp1_High_70Gy", "PTVp1_High_70Gy"),
        ("ITV_54.5Gy", "ITV_54.5Gy"),
        ("CTVsb", "CTVsb"),
        ("PTV", "PTV"),
    ],
)
def test_grammar_names(name: str, expected: str) -> None:
    assert tg263_target_name(name) == expected


@pytest.mark.parametrize(
    "name", ["PTV boost", "PTVs", "PTV_Highest", "Heart", "xPTV", "PTV_High_", "PTV_7"]
)
def test_other_names_are_not_targets(name: str) -> None:
    assert tg263_target_name(name) is None


def test_mapper_recognises_targets_and_rules_may_name_them() -> None:
    rules = RuleSet([])
    assert rules.map("PTV_High").tg263_name == "PTV_High"
    assert rules.map("ptv_low").via == "tg263-name"
    assert rules.map("PTV boost").tg263_name is None
    parsed = parse_rules_csv(
        "centre,pattern,kind,tg263_name\n,boost,exact,PTV_High\n", "r.csv"
    )
    assert RuleSet(parsed).map("Boost").tg263_name == "PTV_High"
    with pytest.raises(MappingError, match=r"r\.csv: line 2: tg263_name 'PTV_Higher'"):
        parse_rules_csv(
            "centre,pattern,kind,tg263_name\n,b,exact,PTV_Higher\n", "r.csv"
        )
