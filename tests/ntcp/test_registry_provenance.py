"""Published-model registry: DOIs, a source per parameter, unconfirmed never default."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest
from typer.testing import CliRunner

from ntcp.registry import (
    DOI_PATTERN,
    PublishedModel,
    UnconfirmedModelWarning,
    default_models,
    get_model,
    list_models,
)
from rtcohort.cli import app


def raw_models() -> list[dict]:
    text = resources.files("ntcp").joinpath("data/published_models.json").read_text()
    return json.loads(text)["models"]


@pytest.mark.parametrize("entry", raw_models(), ids=lambda e: e["id"])
def test_every_entry_has_a_doi_and_a_source_per_parameter(entry):
    assert re.match(r"^10\.\d{4,9}/\S+$", entry["doi"])
    assert re.match(DOI_PATTERN, entry["doi"])
    names = {k for k in entry["parameters"] if k != "coefficients"}
    names |= set(entry["parameters"].get("coefficients", {}))
    assert set(entry["sources"]) == names
    for source in entry["sources"].values():
        assert source["source"].strip()
        assert isinstance(source["confirmed"], bool)
        if not source["confirmed"]:
            assert "unconfirmed" in source["source"]
    assert entry["confirmed"] == all(s["confirmed"] for s in entry["sources"].values())


def test_unconfirmed_entries_are_never_defaults():
    unconfirmed = {m.id for m in list_models() if not m.confirmed}
    assert unconfirmed  # the review could not confirm every number
    assert "burman1991_lung_pneumonitis" in unconfirmed
    for organ in {o for m in list_models() for o in m.organ} | {None}:
        assert not {m.id for m in default_models(organ)} & unconfirmed
    assert {m.id for m in default_models()} == {
        m.id for m in list_models() if m.confirmed
    }


def test_asking_for_an_unconfirmed_model_by_id_warns():
    with pytest.warns(UnconfirmedModelWarning, match="seppenwoolde.*: n not confirmed"):
        get_model("seppenwoolde2003_lungs_pneumonitis")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"doi": "doi:10.1/x"}, "is not a DOI"),
        ({"sources": {}}, "sources must name each parameter"),
        ({"confirmed": True}, "confirmed must be true exactly when"),
    ],
)
def test_registry_validation_refuses_entries_without_provenance(change, message):
    entry = next(e for e in raw_models() if not e["confirmed"])
    with pytest.raises(ValueError, match=message):
        PublishedModel.model_validate({**entry, **change})


def test_cli_marks_unconfirmed_models():
    out = CliRunner().invoke(app, ["ntcp", "models"]).output
    assert out.count("[unconfirmed: not offered as a default]") == sum(
        not m.confirmed for m in list_models()
    )
