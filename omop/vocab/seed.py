"""Seed the vocabulary the platform needs (run by ``rtcohort db upgrade``).

Loads, idempotently and in the caller's transaction:

- the standard concepts whose ids are verified (``omop/spec/concept_reference.csv``
  and ``omop/vocab/data/standard_concepts.csv``, :mod:`omop.vocab.standard_concepts`);
- our own concepts (TG-263 structures, CTCAE v5.0/v6.0 terms and grades, QLQ-C30 items
  and scales, CDM field concepts, timepoints, consent states) with registry ids;
- the DOMAIN, VOCABULARY and CONCEPT_CLASS rows they reference, each vocabulary with
  a version (:data:`SEED_VERSION`; a vocabulary row without one gets it);
- pending ``Maps to`` rows (TG-263 -> SNOMED CT by code) for ``vocab load-athena``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from omop.cdm import Concept, ConceptClass, Domain, Vocabulary
from omop.platform import ConceptMapPending
from omop.vocab.registry import our_concept_id
from omop.vocab.sources import (
    VOCABULARIES,
    our_concepts,
    pending_maps,
    reference_concepts,
)
from omop.vocab.standard_concepts import standard_concepts

__all__ = ["SEED_VERSION", "SeedReport", "seed_vocabulary"]

#: Version of the seed, written to VOCABULARY.vocabulary_version of the vocabularies
#: it creates (ours in full; of an OHDSI vocabulary only the subset we use).
SEED_VERSION = "rtcohort seed v1"

VALID_START = datetime.date(1970, 1, 1)
VALID_END = datetime.date(2099, 12, 31)


@dataclass(frozen=True)
class SeedReport:
    """How many rows the seed added (0 everywhere on a re-run)."""

    concepts: int
    vocabularies: int
    domains: int
    concept_classes: int
    pending_maps: int


def _clean_name(name: str) -> str:
    """Drop the compiler's notes: 'X (name may now be ...)', 'X (label from ...)'."""
    for marker in (" (name may", " (label from"):
        if marker in name:
            name = name.split(marker, maxsplit=1)[0]
    return name


def _clean_class(concept_class: str) -> str:
    """'Treatment Episode -> Treatment' -> 'Treatment'; 'X (renamed ...)' -> 'X'."""
    concept_class = (
        concept_class.rsplit(" -> ", maxsplit=1)[-1].split(" (", maxsplit=1)[0].strip()
    )
    return concept_class or "Undefined"


def _concept_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for ref in reference_concepts():
        legacy = ref["project_use"].upper().startswith("LEGACY")
        rows.append(
            {
                "concept_id": int(ref["concept_id"]),
                "concept_name": _clean_name(ref["concept_name"])[:255],
                "domain_id": ref["domain_id"],
                "vocabulary_id": ref["vocabulary_id"],
                "concept_class_id": _clean_class(ref["concept_class_id"]),
                "standard_concept": None if legacy or ref["concept_id"] == "0" else "S",
                "concept_code": ref["concept_code"] or ref["concept_name"][:50],
                "valid_start_date": VALID_START,
                "valid_end_date": VALID_END,
                "invalid_reason": None,
            }
        )
    have = {int(str(r["concept_id"])) for r in rows}
    for std in standard_concepts():
        if std.concept_id in have:
            continue
        rows.append(
            {
                "concept_id": std.concept_id,
                "concept_name": std.name,
                "domain_id": std.domain,
                "vocabulary_id": std.vocabulary,
                "concept_class_id": std.concept_class,
                "standard_concept": "S",
                "concept_code": std.concept_code,
                "valid_start_date": VALID_START,
                "valid_end_date": VALID_END,
                "invalid_reason": None,
            }
        )
    for c in our_concepts():
        rows.append(
            {
                "concept_id": our_concept_id(c.vocabulary_id, c.concept_code),
                "concept_name": c.concept_name[:255],
                "domain_id": c.domain_id,
                "vocabulary_id": c.vocabulary_id,
                "concept_class_id": c.concept_class_id,
                "standard_concept": None,  # our concepts are non-standard (OHDSI rule)
                "concept_code": c.concept_code,
                "valid_start_date": VALID_START,
                "valid_end_date": VALID_END,
                "invalid_reason": None,
            }
        )
    return rows


def _vocabulary_row(vocabulary_id: str) -> dict[str, object]:
    name, reference = VOCABULARIES.get(vocabulary_id, (vocabulary_id, ""))
    ours = vocabulary_id in VOCABULARIES
    return {
        "vocabulary_id": vocabulary_id,
        "vocabulary_name": name,
        "vocabulary_reference": reference or "rtcohort seed",
        "vocabulary_version": SEED_VERSION if ours else f"{SEED_VERSION} (subset)",
        "vocabulary_concept_id": 0,
    }


def seed_vocabulary(session: Session) -> SeedReport:
    """Insert what is missing of the seed; never changes or deletes existing rows.

    Parameters
    ----------
    session
        Open session; the caller owns the transaction (this function never commits).
    """
    concepts = _concept_rows()
    have_domains = set(session.scalars(select(Domain.domain_id)))
    have_vocabs = set(session.scalars(select(Vocabulary.vocabulary_id)))
    have_classes = set(session.scalars(select(ConceptClass.concept_class_id)))
    have_concepts = set(session.scalars(select(Concept.concept_id)))

    domains = sorted({str(r["domain_id"]) for r in concepts} - have_domains)
    classes = sorted({str(r["concept_class_id"]) for r in concepts} - have_classes)
    vocabs = sorted({str(r["vocabulary_id"]) for r in concepts} - have_vocabs)
    if domains:
        session.execute(
            insert(Domain),
            [
                {"domain_id": d, "domain_name": d, "domain_concept_id": 0}
                for d in domains
            ],
        )
    if classes:
        session.execute(
            insert(ConceptClass),
            [
                {
                    "concept_class_id": c,
                    "concept_class_name": c,
                    "concept_class_concept_id": 0,
                }
                for c in classes
            ],
        )
    if vocabs:
        session.execute(
            insert(Vocabulary),
            [_vocabulary_row(v) for v in vocabs],
        )
    session.execute(
        update(Vocabulary)
        .where(Vocabulary.vocabulary_version.is_(None))
        .values(vocabulary_version=f"{SEED_VERSION} (subset)")
    )
    new_concepts = [r for r in concepts if r["concept_id"] not in have_concepts]
    if new_concepts:
        session.execute(insert(Concept), new_concepts)

    have_maps: set[tuple[int, str, str, str]] = {
        (int(a), str(b), str(c), str(d))
        for a, b, c, d in session.execute(
            select(
                ConceptMapPending.source_concept_id,
                ConceptMapPending.relationship_id,
                ConceptMapPending.target_vocabulary_id,
                ConceptMapPending.target_concept_code,
            )
        )
    }
    maps = []
    for m in pending_maps():
        key = (
            our_concept_id(m.vocabulary_id, m.concept_code),
            m.relationship_id,
            m.target_vocabulary_id,
            m.target_concept_code,
        )
        if key not in have_maps:
            have_maps.add(key)
            maps.append(
                dict(
                    zip(
                        (
                            "source_concept_id",
                            "relationship_id",
                            "target_vocabulary_id",
                            "target_concept_code",
                        ),
                        key,
                        strict=True,
                    )
                )
            )
    if maps:
        session.execute(insert(ConceptMapPending), maps)
    session.flush()
    return SeedReport(
        concepts=len(new_concepts),
        vocabularies=len(vocabs),
        domains=len(domains),
        concept_classes=len(classes),
        pending_maps=len(maps),
    )
