"""Project views of an export: project pseudonyms, no centre, no shared identifiers.

The ETL does not hold project keys (they belong to :mod:`cohort.project_keys`); the
composition root passes an access object that may also offer a :class:`ProjectView`
(:class:`PseudonymisingAccess`). With a view, the dose-metric export and the structure
report relabel every identifier (patient, course, dose object) per project, drop the
centre column unless the project grants analysis by centre, and sort the rows by the
new labels, so two projects' exports share no identifier and no row order.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

__all__ = ["ProjectView", "PseudonymisingAccess", "relabel_dose_rows", "view_for"]

_PERSON, _CENTRE, _COURSE, _DOSE = 0, 1, 2, 3


@runtime_checkable
class ProjectView(Protocol):
    """The relabelling of one project."""

    @property
    def centre_level(self) -> bool:
        """Whether the project's protocol grants analysis by centre."""

    def person(self, person_source_value: str) -> str:
        """Return the project pseudonym of a stored pseudonym."""

    def label(self, kind: str, value: str) -> str:
        """Return the project's label of another identifier."""


@runtime_checkable
class PseudonymisingAccess(Protocol):
    """An export access that knows when the reader must see project pseudonyms."""

    def view(self, session: Session, project: str | None) -> ProjectView | None:
        """Return the project view the reader sees (None: stored pseudonyms)."""


def view_for(
    access: object, session: Session, project: str | None
) -> ProjectView | None:
    """Return the project view of ``access`` (None when it offers none)."""
    if isinstance(access, PseudonymisingAccess):
        return access.view(session, project)
    return None


def relabel_dose_rows(
    header: list[str], rows: list[list[str]], view: ProjectView
) -> tuple[list[str], list[list[str]]]:
    """Relabel the identifier columns of dose-metric rows; drop the centre column.

    The rows are as :func:`etl.store.export.dose_metric_table` builds them
    (pseudonym, centre, episode id, dose SOP Instance UID, ...).
    """
    out = []
    for row in rows:
        new = list(row)
        new[_PERSON] = view.person(row[_PERSON])
        new[_COURSE] = view.label("C", row[_COURSE]) if row[_COURSE] else ""
        new[_DOSE] = view.label("D", row[_DOSE])
        out.append(new)
    out.sort(key=lambda r: (r[_PERSON], r[_COURSE], r[_DOSE], r[4:]))
    if view.centre_level:
        return header, out
    keep = [i for i in range(len(header)) if i != _CENTRE]
    return [header[i] for i in keep], [[r[i] for i in keep] for r in out]
