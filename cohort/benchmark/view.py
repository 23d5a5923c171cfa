"""Which centres a benchmark read shows, under which labels, and its audit record.

A viewer (and an admin) sees every centre: their own by code, the others under
:func:`cohort.permissions.anonymised_labels`; a clinician or data manager sees only
their own centres. Tables that show a centre other than the user's own are passed
through :func:`cohort.benchmark.suppression.suppress_small_cells`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from cohort import audit
from cohort.benchmark.suppression import suppress_small_cells
from cohort.centres import centre_codes
from cohort.permissions import Action, Scope, anonymised_labels
from cohort.users import Role

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = ["MIN_COUNT", "CentreView", "centre_view", "record_read"]

#: Smallest count shown beside other centres.
MIN_COUNT = 5

_ALL_CENTRES = frozenset({Role.VIEWER, Role.ADMIN})


@dataclass(frozen=True)
class CentreView:
    """The centres one benchmark read shows.

    Attributes
    ----------
    labels
        ``care_site_id -> label`` of every visible centre (own by code).
    own
        The user's own centres (named).
    codes
        ``care_site_id -> code`` of the visible centres (for joins on codes only;
        never shown for a centre outside ``own`` unless the user names all).
    """

    labels: dict[int, str]
    own: frozenset[int]
    codes: dict[int, str]

    @property
    def centre_ids(self) -> list[int]:
        """The visible centres, sorted."""
        return sorted(self.labels)

    @property
    def shows_others(self) -> bool:
        """Whether a centre other than the user's own is visible."""
        return any(i not in self.own for i in self.labels)

    def label_of_code(self, code: str) -> str | None:
        """Return the label of the centre with ``code`` (None: not visible)."""
        for i, c in self.codes.items():
            if c == code.upper():
                return self.labels[i]
        return None

    def suppress(
        self,
        df: pd.DataFrame,
        count_columns: Sequence[str],
        group_columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Suppress the small cells of the other centres' rows (column ``centre``).

        The user's own rows are shown in full (they may see their own counts); the
        complementary suppression runs among the other centres' rows.
        """
        if not self.shows_others or df.empty:
            return df
        own = {self.labels[i] for i in self.own if i in self.labels}
        others = ~df["centre"].isin(own)
        out = df.copy()
        cols = list(count_columns)
        out[cols] = out[cols].astype("float64")  # a withheld cell becomes NaN
        hidden = suppress_small_cells(
            df[others],
            cols,
            min_count=MIN_COUNT,
            group_columns=tuple(group_columns or ()),
        )
        out.loc[others, cols] = hidden[cols].astype("float64")
        return out


def centre_view(session: Session, scope: Scope) -> CentreView:
    """Return the centres ``scope`` (an aggregate-read scope) shows.

    Raises
    ------
    PermissionDeniedError
        When the scope does not allow aggregates (refusal audited).
    """
    scope.require()
    if scope.action is not Action.READ_AGGREGATES:
        raise scope.deny(f"benchmarks need {Action.READ_AGGREGATES.value}")
    codes = centre_codes(session)
    named = scope.named_centre_ids
    if named is None or scope.role in _ALL_CENTRES:
        visible = set(codes)
    else:
        visible = {i for i in codes if i in named}
    labels = anonymised_labels(visible, codes, named)
    own = frozenset(named) if named is not None else frozenset()
    return CentreView(labels, own, {i: codes[i] for i in visible})


def record_read(session: Session, scope: Scope, what: str, detail: str) -> None:
    """Write the audit record of one benchmark read (aggregates: no persons)."""
    audit.record(session, scope.username, f"benchmark.{what}", detail)
