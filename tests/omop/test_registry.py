"""The concept id registry is append-only, in our range, and covers every concept."""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

from omop.vocab.registry import FIRST_ID, append_missing, load_registry
from omop.vocab.sources import our_concepts


def _rows() -> list[dict[str, str]]:
    text = (resources.files("omop.vocab") / "registry.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def test_ids_are_consecutive_from_the_first_id_in_file_order() -> None:
    ids = [int(r["concept_id"]) for r in _rows()]
    # append-only: an id is never reused, changed or inserted in the middle
    assert ids[0] == FIRST_ID
    assert ids == list(range(FIRST_ID, FIRST_ID + len(ids)))
    assert max(ids) < 2_128_000_001  # clear of the ImageWG DICOM draft range


def test_released_ids_never_move() -> None:
    registry = load_registry()
    # anchors of the first release: these ids are referenced by stored data
    assert registry[("TG263", "A_Aorta")] == 2_050_000_000
    assert registry[("RTC Consent", "withdrawn")] == 2_050_002_505


def test_keys_are_unique_and_every_concept_has_an_id() -> None:
    keys = [(r["vocabulary_id"], r["concept_code"]) for r in _rows()]
    assert len(keys) == len(set(keys))
    missing = [
        (c.vocabulary_id, c.concept_code)
        for c in our_concepts()
        if (c.vocabulary_id, c.concept_code) not in load_registry()
    ]
    assert missing == []


def test_append_adds_only_new_codes_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    assert append_missing([("V", "a"), ("V", "b")], path) == 2
    assert append_missing([("V", "b"), ("V", "c")], path) == 1
    rows = list(csv.DictReader(path.open()))
    assert [(r["concept_code"], int(r["concept_id"])) for r in rows] == [
        ("a", FIRST_ID),
        ("b", FIRST_ID + 1),
        ("c", FIRST_ID + 2),
    ]
