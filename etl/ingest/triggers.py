"""Project rules (triggers): DICOM attributes attach arriving datasets to projects.

Kinds of rule (patterns are case-insensitive with ``*`` and ``?`` wildcards):

- ``roi``: the structure set has an ROI whose name matches;
- ``empty-roi``: the structure set has an ROI *without contours* whose name matches
  (the DcmCollab convention: a planner adds an empty ROI named after the project);
- ``tag``: a top-level attribute (``keyword``, e.g. ``StudyDescription``) of any object
  of the dataset matches.

The attaching itself is done by a callable passed in by the composition root (the
cohort package owns projects and checks consent and expiry).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydicom.datadict import keyword_dict
from sqlalchemy import select
from sqlalchemy.orm import Session

from etl.dicom.index import ResolvedDataset
from etl.errors import EtlError
from etl.mapping.naming import normalise_name
from omop.ingest_tables import ProjectTrigger

__all__ = [
    "TriggerError",
    "TriggerKind",
    "TriggerRule",
    "active_triggers",
    "add_trigger",
    "keywords_needed",
    "projects_for",
]


class TriggerError(EtlError, ValueError):
    """A trigger rule is malformed."""


class TriggerKind(StrEnum):
    """What a trigger looks at."""

    ROI = "roi"
    EMPTY_ROI = "empty-roi"
    TAG = "tag"


@dataclass(frozen=True)
class TriggerRule:
    """One active trigger."""

    trigger_id: int
    project_code: str
    kind: TriggerKind
    pattern: str
    keyword: str | None = None
    centre: str | None = None

    def describe(self) -> str:
        """Return the rule as text (stored with the attachment)."""
        what = f"{self.kind.value}"
        if self.keyword:
            what += f" {self.keyword}"
        return f"trigger {self.trigger_id}: {what} ~ {self.pattern}"[:255]

    def _regex(self) -> re.Pattern[str]:
        text = normalise_name(self.pattern)
        parts = ["." if c == "?" else ".*" if c == "*" else re.escape(c) for c in text]
        return re.compile("".join(parts))

    def matches(self, dataset: ResolvedDataset, centre: str | None = None) -> bool:
        """Whether the dataset fulfils the rule.

        Examples
        --------
        >>> from etl.dicom.index import IndexedObject, ResolvedDataset, DoseRole
        >>> ss = IndexedObject("p", "h", "RTSTRUCT", "", "1", "2", "3", "4", "P",
        ...                    roi_names=("Heart", "STUDY_X"),
        ...                    empty_roi_names=("STUDY_X",))
        >>> ds = ResolvedDataset(ss, DoseRole.PLAN, structure_set=ss)
        >>> TriggerRule(1, "X", TriggerKind.EMPTY_ROI, "study_*").matches(ds)
        True
        """
        if self.centre and centre and self.centre.upper() != centre.upper():
            return False
        regex = self._regex()
        ss = dataset.structure_set
        if self.kind is TriggerKind.ROI:
            names: Sequence[str] = ss.roi_names if ss else ()
        elif self.kind is TriggerKind.EMPTY_ROI:
            names = ss.empty_roi_names if ss else ()
        else:
            assert self.keyword is not None
            names = [o.attribute(self.keyword) for o in dataset.members()]
        return any(regex.fullmatch(normalise_name(n)) for n in names if n)


def add_trigger(
    session: Session,
    project_code: str,
    kind: TriggerKind | str,
    pattern: str,
    *,
    keyword: str | None = None,
    centre: str | None = None,
) -> ProjectTrigger:
    """Store an active trigger rule and return it."""
    try:
        the_kind = TriggerKind(str(kind))
    except ValueError:
        raise TriggerError(f"trigger kind {kind!r}: use roi|empty-roi|tag") from None
    if the_kind is TriggerKind.TAG and (not keyword or keyword not in keyword_dict):
        raise TriggerError(f"trigger keyword {keyword!r}: not a DICOM keyword")
    if not pattern.strip():
        raise TriggerError("trigger pattern is empty")
    row = ProjectTrigger(
        project_code=project_code,
        kind=the_kind.value,
        keyword=keyword if the_kind is TriggerKind.TAG else None,
        pattern=pattern.strip(),
        centre=centre.upper() if centre else None,
        active=True,
        created_at=datetime.datetime.now(datetime.UTC),
    )
    session.add(row)
    session.flush()
    return row


def active_triggers(session: Session) -> list[TriggerRule]:
    """Return the active trigger rules."""
    return [
        TriggerRule(
            r.trigger_id,
            r.project_code,
            TriggerKind(r.kind),
            r.pattern,
            r.keyword,
            r.centre,
        )
        for r in session.scalars(
            select(ProjectTrigger)
            .where(ProjectTrigger.active.is_(True))
            .order_by(ProjectTrigger.trigger_id)
        )
    ]


def keywords_needed(rules: Sequence[TriggerRule]) -> tuple[str, ...]:
    """Return the attribute keywords the index must capture for these rules."""
    return tuple(sorted({r.keyword for r in rules if r.keyword}))


def projects_for(
    rules: Sequence[TriggerRule], dataset: ResolvedDataset, centre: str | None = None
) -> list[tuple[str, str]]:
    """Return ``(project_code, rule description)`` of every rule the dataset fulfils."""
    return [(r.project_code, r.describe()) for r in rules if r.matches(dataset, centre)]
