"""Re-map loaded structures after a rule import, only where the rules apply.

A file of one centre's rules re-maps that centre's structures only; a file with a
global rule (no centre) re-maps every centre (:func:`rule_scope`). Structures whose
TG-263 name (or target flag) changed get their metrics rewritten from the stored
differential DVH, no DICOM is read. :class:`RemapReport` says what changed: per
centre and ROI name the old and new TG-263 name and how many structures, and the
number of metrics recomputed.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etl.dose.dvh import DVH
from etl.mapping.naming import Rule, RuleSet, is_target, structure_concept_id
from etl.store.course import episode_fractions
from etl.store.dvh_rows import (
    AlphaBeta,
    MetricContext,
    delete_metrics,
    dvh_from_row,
    write_metrics,
)
from omop.cdm import Episode
from omop.ingest_tables import Dvh, DvhMetric, IngestDataset
from omop.vocab.lookup import field_concept_id

__all__ = ["RemapChange", "RemapReport", "remap_loaded", "rule_scope"]


class RemapChange(NamedTuple):
    """Structures of one centre and ROI name moved from one TG-263 name to another."""

    centre: str
    roi_name: str
    old_name: str | None
    new_name: str | None
    structures: int


@dataclass
class RemapReport:
    """What re-mapping loaded structures changed.

    ``centres`` is the scope (None: every centre); ``structures_checked`` counts
    the structures in scope only.
    """

    structures_checked: int = 0
    structures_changed: int = 0
    metrics_rewritten: int = 0
    centres: tuple[str, ...] | None = None
    changes: list[RemapChange] = field(default_factory=list)

    def change_lines(self) -> list[str]:
        """Return one line per change: ``centre roi: old -> new (n structures)``."""
        return [
            f"  {c.centre} {c.roi_name!r}: {c.old_name or 'unmapped'} -> "
            f"{c.new_name or 'unmapped'} ({c.structures} structure(s))"
            for c in self.changes
        ]


def rule_scope(rules: Iterable[Rule]) -> tuple[str, ...] | None:
    """Return the centres ``rules`` can change, or None when one rule is global."""
    centres: set[str] = set()
    for rule in rules:
        if rule.centre is None:
            return None
        centres.add(rule.centre)
    return tuple(sorted(centres))


def remap_loaded(
    session: Session,
    rules: RuleSet,
    *,
    centres: Collection[str] | None = None,
    alpha_beta: AlphaBeta | None = None,
) -> RemapReport:
    """Re-map loaded structures with ``rules``; recompute changed ones from the DVH.

    Parameters
    ----------
    session
        The caller's session (not committed here).
    rules
        The effective rule set (:func:`etl.mapping.naming.current_rules`).
    centres
        Re-map only the structures of these centres (the scope of the imported
        rules, :func:`rule_scope`); None re-maps every centre.
    alpha_beta
        The alpha/beta ratios of the recomputed EQD2 metrics.

    Returns
    -------
    RemapReport
        Counts and the per centre and ROI name changes.
    """
    report = RemapReport(centres=None if centres is None else tuple(sorted(centres)))
    query = (
        select(Dvh, IngestDataset.centre, IngestDataset.episode_id)
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .order_by(Dvh.dataset_id, Dvh.roi_number)
    )
    if centres is not None:
        query = query.where(IngestDataset.centre.in_(list(centres)))
    changed: dict[int, list[tuple[Dvh, DVH]]] = {}
    episodes: dict[int, int | None] = {}
    moves: Counter[tuple[str, str, str | None, str | None]] = Counter()
    for row, centre, episode_id in session.execute(query).all():
        report.structures_checked += 1
        mapped = rules.map(row.roi_name, centre)
        new_target = is_target(mapped.tg263_name, row.interpreted_type)
        rule_id = mapped.rule.rule_id if mapped.rule else None
        if (mapped.tg263_name, new_target) == (row.tg263_name, row.is_target):
            if row.mapping_rule_id != rule_id:
                row.mapping_rule_id = rule_id
            continue
        report.structures_changed += 1
        moves[(centre, row.roi_name, row.tg263_name, mapped.tg263_name)] += 1
        row.tg263_name = mapped.tg263_name
        row.structure_concept_id = structure_concept_id(mapped.tg263_name)
        row.mapping_rule_id = rule_id
        row.is_target = new_target
        episodes[row.dataset_id] = episode_id
        changed.setdefault(row.dataset_id, []).append((row, dvh_from_row(row)))
    session.flush()
    report.changes = [RemapChange(*key, n) for key, n in sorted(moves.items(), key=str)]
    report.metrics_rewritten = _rewrite_metrics(
        session, changed, episodes, alpha_beta or AlphaBeta()
    )
    return report


def _rewrite_metrics(
    session: Session,
    changed: dict[int, list[tuple[Dvh, DVH]]],
    episodes: dict[int, int | None],
    alpha_beta: AlphaBeta,
) -> int:
    """Delete and rewrite the metrics of the changed structures; return how many."""
    if not changed:
        return 0
    metric_field = field_concept_id(session, "measurement.measurement_id")
    feature_field = field_concept_id(session, "image_feature.image_feature_id")
    now = datetime.datetime.now(datetime.UTC)
    written = 0
    for dataset_id, items in changed.items():
        has_metrics = session.scalar(
            select(func.count())
            .select_from(DvhMetric)
            .join(Dvh, Dvh.dvh_id == DvhMetric.dvh_id)
            .where(Dvh.dataset_id == dataset_id)
        )
        delete_metrics(session, [r.dvh_id for r, _ in items])
        if not has_metrics:
            continue
        episode_id = episodes[dataset_id]
        day = (
            session.scalar(
                select(Episode.episode_start_date).where(
                    Episode.episode_id == episode_id
                )
            )
            or now.date()
        )
        ctx = MetricContext(
            person_id=items[0][0].person_id,
            day=day,
            fractions=episode_fractions(session, episode_id) if episode_id else None,
            alpha_beta=alpha_beta,
            metric_field=metric_field,
            feature_field=feature_field,
            now=now,
        )
        written += write_metrics(session, items, ctx)
    return written
