"""Verified standard concepts: the data file, the constants, the seed, CDM_SOURCE."""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from omop.cdm import CdmSource, Concept, Vocabulary
from omop.cdm_source import write_cdm_source
from omop.vocab import standard
from omop.vocab.seed import SEED_VERSION
from omop.vocab.standard_concepts import (
    StandardConceptFileError,
    _parse,
    standard_concepts,
)

_HEADER = (
    "concept_id,name,domain,vocabulary,concept_class,concept_code,source_1,source_2\n"
)


def test_every_nonzero_constant_is_a_verified_concept_with_two_sources() -> None:
    verified = {c.concept_id: c for c in standard_concepts()}
    for name in standard.__all__:
        value = getattr(standard, name)
        if value == standard.NO_MATCHING_CONCEPT:
            continue
        assert value in verified, name
        row = verified[value]
        assert row.source_1 and row.source_2 and row.source_1 != row.source_2


def test_malformed_file_names_file_and_line() -> None:
    with pytest.raises(StandardConceptFileError, match=r"x.csv line 2: concept_id"):
        _parse(_HEADER + "abc,n,d,v,c,k,s1,s2\n", "x.csv")
    with pytest.raises(StandardConceptFileError, match=r"x.csv line 3: .*must differ"):
        _parse(_HEADER + "1,n,d,v,c,k,s1,s2\n2,n,d,v,c,k,s,s\n", "x.csv")
    with pytest.raises(StandardConceptFileError, match=r"x.csv line 1: columns"):
        _parse("concept_id,name\n1,n\n", "x.csv")


def test_seed_holds_them_and_every_vocabulary_has_a_version(session: Session) -> None:
    ids = [c.concept_id for c in standard_concepts()]
    seeded = dict(
        session.execute(
            select(Concept.concept_id, Concept.standard_concept).where(
                Concept.concept_id.in_(ids)
            )
        ).all()
    )
    assert set(seeded) == set(ids)
    assert set(seeded.values()) == {"S"}
    versions = list(session.scalars(select(Vocabulary.vocabulary_version)))
    assert versions and all(v and v.startswith(SEED_VERSION) for v in versions)


def test_cdm_source_written_once_and_refreshed(session: Session) -> None:
    first = datetime.date(2026, 1, 2)
    # the fixture's upgrade may have written it already: its creation date stays
    created = session.scalar(select(CdmSource.cdm_release_date)) or first
    write_cdm_source(session, "Nordic RT cohort", first)
    write_cdm_source(session, "Nordic RT cohort", datetime.date(2026, 3, 4))
    rows = list(session.scalars(select(CdmSource)))
    assert len(rows) == 1
    row = rows[0]
    assert (row.cdm_source_name, row.cdm_version) == ("Nordic RT cohort", "v5.4")
    assert row.cdm_release_date == created
    assert row.source_release_date == datetime.date(2026, 3, 4)
    assert row.vocabulary_version == SEED_VERSION
    assert row.cdm_version_concept_id == 0  # not verified, no Athena loaded
    with pytest.raises(ValueError, match="empty"):
        write_cdm_source(session, "  ")
