from __future__ import annotations

import pytest

from ntcp.endpoints import CtcaeEndpoint, Direction, QlqC30Endpoint, parse_endpoint
from ntcp.errors import EndpointSyntaxError


def test_ctcae_single_and_multiple_terms():
    e = parse_endpoint("ctcae:Pneumonitis>=2@365d")
    assert e == CtcaeEndpoint(("Pneumonitis",), 2, 365)
    e = parse_endpoint(" ctcae:Dysphagia | Esophagitis>=3@90d ")
    assert e == CtcaeEndpoint(("Dysphagia", "Esophagitis"), 3, 90)
    assert str(e) == "ctcae:Dysphagia|Esophagitis>=3@90d"
    assert parse_endpoint(str(e)) == e


def test_qlqc30_directions():
    fa = parse_endpoint("qlqc30:FA-10@m12")
    assert fa == QlqC30Endpoint("FA", 10.0, "m12")
    assert fa.direction is Direction.RISE
    assert fa.is_deterioration(20.0, 30.0)
    assert not fa.is_deterioration(30.0, 20.0)
    assert not fa.is_deterioration(20.0, 29.9)
    pf = parse_endpoint("qlqc30:PF-10@m6")
    assert pf.scale == "PF2"
    assert pf.direction is Direction.FALL
    assert pf.is_deterioration(80.0, 70.0)
    assert not pf.is_deterioration(70.0, 80.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ctcae:Pneumonitis>=6@365d", "grade must be 1-5"),
        ("ctcae:Pneumonitis>2@365d", "expected ctcae"),
        ("ctcae:Pneumonitis>=2@365", "expected ctcae"),
        ("ctcae:Pneumonitis||Cough>=2@365d", "empty CTCAE term"),
        ("ctcae:Pneumonitis>=2@0d", "window"),
        ("qlqc30:XX-10@m12", "unknown QLQ-C30 scale"),
        ("qlqc30:FA+10@m12", "expected qlqc30"),
        ("qlqc30:FA-10@baseline", "after baseline"),
        ("prom:FA-10@m12", "must start with"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(EndpointSyntaxError, match=message):
        parse_endpoint(spec)


def test_known_terms_checked():
    with pytest.raises(EndpointSyntaxError, match="unknown CTCAE term"):
        parse_endpoint("ctcae:Pneumonitiss>=2@365d", known_terms={"Pneumonitis"})
