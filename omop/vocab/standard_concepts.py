"""The verified standard concept ids the platform writes, with their public sources.

``omop/vocab/data/standard_concepts.csv`` holds one row per OHDSI standard concept that
rtcohort writes into a ``*_concept_id`` field, each with two independent public
sources for its id (``source_1``, ``source_2``). The seed loads them; the constants of
:mod:`omop.vocab.standard` are checked against them by a test. An id we cannot verify
in two sources is not in the file: its field stays 0 (``No matching concept``) with the
value in ``*_source_value`` (e.g. the Gy unit, the DICOM modalities; see
``docs/omop.md``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from omop.errors import RTCohortError

__all__ = ["StandardConcept", "StandardConceptFileError", "standard_concepts"]

_FILE = "standard_concepts.csv"
_COLUMNS = (
    "concept_id",
    "name",
    "domain",
    "vocabulary",
    "concept_class",
    "concept_code",
    "source_1",
    "source_2",
)


class StandardConceptFileError(RTCohortError, ValueError):
    """The standard-concept file is malformed (names file, line and reason)."""


@dataclass(frozen=True)
class StandardConcept:
    """One verified standard concept and its two sources."""

    concept_id: int
    name: str
    domain: str
    vocabulary: str
    concept_class: str
    concept_code: str
    source_1: str
    source_2: str


def _parse(text: str, where: str) -> tuple[StandardConcept, ...]:
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != _COLUMNS:
        raise StandardConceptFileError(
            f"{where} line 1: columns must be {', '.join(_COLUMNS)}"
        )
    rows: list[StandardConcept] = []
    seen: set[int] = set()
    for line, row in enumerate(reader, start=2):
        try:
            concept_id = int(row["concept_id"])
        except ValueError:
            raise StandardConceptFileError(
                f"{where} line {line}: concept_id {row['concept_id']!r} is not a number"
            ) from None
        missing = [c for c in _COLUMNS if not (row[c] or "").strip()]
        if missing:
            raise StandardConceptFileError(
                f"{where} line {line}: empty {', '.join(missing)}"
            )
        if row["source_1"].strip() == row["source_2"].strip():
            raise StandardConceptFileError(
                f"{where} line {line}: source_1 and source_2 must differ"
            )
        if concept_id in seen:
            raise StandardConceptFileError(
                f"{where} line {line}: concept_id {concept_id} twice"
            )
        seen.add(concept_id)
        rows.append(
            StandardConcept(concept_id, *(row[c].strip() for c in _COLUMNS[1:]))
        )
    return tuple(rows)


@cache
def standard_concepts() -> tuple[StandardConcept, ...]:
    """Return the verified standard concepts of ``omop/vocab/data``.

    Raises
    ------
    StandardConceptFileError
        A malformed row (message names the file and line).
    """
    path = resources.files("omop.vocab").joinpath("data", _FILE)
    return _parse(path.read_text(encoding="utf-8"), f"omop/vocab/data/{_FILE}")
