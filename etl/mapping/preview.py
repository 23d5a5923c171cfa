"""Preview a structure-mapping rule on the loaded structures before importing it.

Which local structure names a rule matches (its pattern on the normalised name, at its
centre or everywhere for a global rule) and how many loaded structures would change
their TG-263 name if it were added to the current rules
(:func:`etl.mapping.naming.RuleSet.map` with the same precedence the import uses).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etl.mapping.naming import Rule, RuleSet, normalise_name
from omop.ingest_tables import Dvh, IngestDataset

__all__ = ["LoadedName", "RulePreview", "loaded_names", "preview_rule"]


@dataclass(frozen=True)
class LoadedName:
    """One local structure name of one centre, its current TG-263 name, its count."""

    centre: str
    roi_name: str
    tg263_name: str | None
    structures: int


@dataclass
class RulePreview:
    """What a rule would do: the names it matches, and the structures re-mapped."""

    matched: list[LoadedName] = field(default_factory=list)
    remapped: list[tuple[LoadedName, str | None]] = field(default_factory=list)

    @property
    def structures_remapped(self) -> int:
        """How many loaded structures would get another TG-263 name."""
        return sum(name.structures for name, _ in self.remapped)


def loaded_names(
    session: Session, centres: Iterable[str] | None = None
) -> list[LoadedName]:
    """Return the loaded structure names (of ``centres``; None: all), by centre."""
    query = (
        select(IngestDataset.centre, Dvh.roi_name, Dvh.tg263_name, func.count())
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .group_by(IngestDataset.centre, Dvh.roi_name, Dvh.tg263_name)
        .order_by(IngestDataset.centre, Dvh.roi_name)
    )
    if centres is not None:
        query = query.where(IngestDataset.centre.in_(sorted(set(centres))))
    return [
        LoadedName(str(c), str(n), None if m is None else str(m), int(k))
        for c, n, m, k in session.execute(query).all()
    ]


def preview_rule(
    rule: Rule, current: RuleSet, names: Sequence[LoadedName]
) -> RulePreview:
    """Return the names ``rule`` matches and the re-mapping it would cause."""
    pattern = rule.compiled()
    scope = rule.centre.upper() if rule.centre else None
    proposed = RuleSet([*current.rules, rule], current.version + 1)
    out = RulePreview()
    for name in names:
        if scope is not None and name.centre.upper() != scope:
            continue
        if not pattern.fullmatch(normalise_name(name.roi_name)):
            continue
        out.matched.append(name)
        new = proposed.map(name.roi_name, name.centre).tg263_name
        if new != name.tg263_name:
            out.remapped.append((name, new))
    return out
