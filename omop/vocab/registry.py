"""The append-only registry of our concept ids: ``(vocabulary_id, concept_code) -> id``.

Ids of our own concepts are stable across releases: once a code has an id in
``omop/vocab/registry.csv`` it keeps it forever. New codes are appended at the end with
the next id (``python -m omop.vocab.registry`` appends every code that
:func:`omop.vocab.sources.our_concepts` defines and the file lacks). Ids start at
2,050,000,000 and stay clear of the ImageWG draft DICOM vocabulary
(2,128,000,001-2,128,021,701).
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources
from pathlib import Path

from omop.errors import RTCohortError

__all__ = [
    "FIRST_ID",
    "RESERVED_RANGES",
    "UnknownConceptError",
    "append_missing",
    "load_registry",
    "our_concept_id",
]

FIRST_ID = 2_050_000_000
RESERVED_RANGES = ((2_128_000_001, 2_128_021_701),)
_FILE = "registry.csv"


class UnknownConceptError(RTCohortError, KeyError):
    """A code has no id in the registry (``python -m omop.vocab.registry`` adds it)."""


def _path() -> Path:
    return Path(str(resources.files("omop.vocab") / _FILE))


@cache
def load_registry() -> dict[tuple[str, str], int]:
    """Return the registry as ``{(vocabulary_id, concept_code): concept_id}``."""
    text = _path().read_text(encoding="utf-8") if _path().exists() else ""
    reader = csv.DictReader(io.StringIO(text))
    return {
        (row["vocabulary_id"], row["concept_code"]): int(row["concept_id"])
        for row in reader
    }


def our_concept_id(vocabulary_id: str, concept_code: str) -> int:
    """Return the id of one of our concepts.

    Examples
    --------
    >>> our_concept_id("QLQ-C30", "PF2") >= FIRST_ID
    True
    """
    try:
        return load_registry()[(vocabulary_id, concept_code)]
    except KeyError:
        raise UnknownConceptError(
            f"no concept id for {vocabulary_id!r} code {concept_code!r} in the registry"
        ) from None


def _next_id(used: int) -> int:
    candidate = used + 1
    for low, high in RESERVED_RANGES:
        if low <= candidate <= high:
            candidate = high + 1
    return candidate


def append_missing(keys: list[tuple[str, str]], path: Path | None = None) -> int:
    """Append the keys the registry lacks, with the next free ids; return how many."""
    target = path or _path()
    existing = load_registry() if path is None else {}
    if path is not None and path.exists():
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
        existing = {
            (r["vocabulary_id"], r["concept_code"]): int(r["concept_id"])
            for r in reader
        }
    last = max(existing.values(), default=FIRST_ID - 1)
    new_rows: list[tuple[int, str, str]] = []
    for key in keys:
        if key in existing:
            continue
        last = _next_id(last)
        existing[key] = last
        new_rows.append((last, *key))
    if new_rows:
        write_header = not target.exists() or target.stat().st_size == 0
        with target.open("a", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            if write_header:
                writer.writerow(["concept_id", "vocabulary_id", "concept_code"])
            writer.writerows(new_rows)
    load_registry.cache_clear()
    return len(new_rows)


if __name__ == "__main__":
    from omop.vocab.sources import our_concepts

    added = append_missing([(c.vocabulary_id, c.concept_code) for c in our_concepts()])
    print(f"registry: {added} codes appended")  # noqa: T201
