"""What the import has loaded: datasets per centre, structures mapped to TG-263.

Readers of the ``ingest_dataset`` and ``dvh`` tables for ``rtcohort mapping
unmapped``, the demo and the web pages: how many datasets each centre has loaded,
which ROI names of which centre no rule maps yet (to write rules for), and how many
stored DVHs carry a TG-263 name.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, distinct, func, select
from sqlalchemy.orm import Session

from omop.ingest_tables import Dvh, IngestDataset

__all__ = [
    "UnmappedName",
    "datasets_by_centre",
    "mapping_counts",
    "structure_counts",
    "unmapped_names",
    "warning_counts",
]


@dataclass(frozen=True)
class UnmappedName:
    """An ROI name of a centre that no rule maps, and how many DVHs carry it."""

    centre: str
    roi_name: str
    structures: int


def unmapped_names(session: Session) -> list[UnmappedName]:
    """Return the unmapped ROI names per centre, most frequent first, then by name."""
    rows = session.execute(
        select(IngestDataset.centre, Dvh.roi_name, func.count())
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .where(Dvh.tg263_name.is_(None))
        .group_by(IngestDataset.centre, Dvh.roi_name)
        .order_by(func.count().desc(), Dvh.roi_name)
    ).all()
    return [UnmappedName(str(c), str(n), int(k)) for c, n, k in rows]


def mapping_counts(session: Session) -> tuple[int, Counter[str]]:
    """Return the number of mapped DVHs and the count of each unmapped ROI name."""
    mapped = session.scalar(
        select(func.count()).select_from(Dvh).where(Dvh.tg263_name.is_not(None))
    )
    unmapped: Counter[str] = Counter()
    for (name,) in session.execute(
        select(Dvh.roi_name).where(Dvh.tg263_name.is_(None))
    ):
        unmapped[str(name)] += 1
    return int(mapped or 0), unmapped


def datasets_by_centre(session: Session) -> dict[str, int]:
    """Return the number of loaded RT datasets of each centre."""
    rows = session.execute(
        select(IngestDataset.centre, func.count()).group_by(IngestDataset.centre)
    ).all()
    return {str(centre): int(n) for centre, n in rows}


def warning_counts(session: Session) -> list[tuple[str, str, int]]:
    """Return ``(centre, warning code, datasets)`` of the QA warnings of loaded data.

    The warnings are stored with each dataset as a JSON list of ``{"code",
    "detail"}``; identical lists are grouped in SQL and counted once per dataset.
    """
    rows = session.execute(
        select(IngestDataset.centre, IngestDataset.warnings, func.count())
        .where(IngestDataset.warnings.not_in(["", "[]"]))
        .group_by(IngestDataset.centre, IngestDataset.warnings)
    ).all()
    counts: Counter[tuple[str, str]] = Counter()
    for centre, text, n in rows:
        codes = {str(f.get("code", "")) for f in json.loads(text or "[]")}
        for code in codes:
            counts[(str(centre), code)] += int(n)
    return [(c, code, n) for (c, code), n in sorted(counts.items())]


def structure_counts(session: Session, persons: Select[Any]) -> dict[str, int]:
    """Return the number of persons in ``persons`` with a DVH of each TG-263 name."""
    rows = session.execute(
        select(Dvh.tg263_name, func.count(distinct(Dvh.person_id)))
        .where(Dvh.tg263_name.is_not(None), Dvh.person_id.in_(persons))
        .group_by(Dvh.tg263_name)
    ).all()
    return {str(name): int(n) for name, n in rows}
