"""Dose-metric export and the structure completeness report, from the stored DVHs.

Any metric in TG-263 syntax — including ones never loaded as MEASUREMENTs — is computed
from the full differential DVH kept in the ``dvh`` table, physical or (with an
alpha/beta) in EQD2 with the course's fractions. Reads go through an
:class:`ExportAccess` passed in by the composition root (the cohort package's
permission layer and audit trail).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from etl.dose.dvh import DVH
from etl.dose.metrics import evaluate, parse_metric
from etl.dose.radiobiology import dvh_to_eqd2
from etl.store.course import course_fractions
from etl.store.dvh_read import LoadedDvh, read_dvh_rows
from etl.store.dvh_rows import VOLUME_METRIC, default_metrics, dvh_from_row
from etl.store.export_view import relabel_dose_rows, view_for
from omop.cohort_tables import Project, ProjectPatient

__all__ = [
    "EXPORT_COLUMNS",
    "ExportAccess",
    "ExportTable",
    "default_export_metrics",
    "dose_metric_table",
    "structure_matrix",
    "write_csv",
]

EXPORT_COLUMNS = (
    "person_source_value",
    "centre",
    "episode_id",
    "dose_sop_instance_uid",
    "tg263_name",
    "roi_name",
    "volume_cc",
)


class ExportAccess(Protocol):
    """The permission check and audit trail an export reads through."""

    username: str

    def person_filter(self, person_id: ColumnElement[int]) -> ColumnElement[bool]:
        """Return a SQL condition selecting the persons the user may export."""

    def record(
        self, session: Session, action: str, detail: str, person_ids: Iterable[int]
    ) -> None:
        """Write one audit record of the read."""


@dataclass
class ExportTable:
    """Header and rows of an export, and the persons it holds."""

    header: list[str]
    rows: list[list[str]]
    person_ids: set[int]


def default_export_metrics() -> list[str]:
    """Return the default columns: every default metric of targets and OARs."""
    oar = default_metrics(False, math.inf)
    target = default_metrics(True, None)
    return list(dict.fromkeys([*target, *oar]))


def _cell(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return repr(float(value))


def _rows(
    session: Session,
    access: ExportAccess,
    project: str | None,
    centres: Sequence[str],
    structures: Sequence[str],
) -> list[LoadedDvh]:
    """Return the stored DVHs the export reads (through the loader's reader)."""
    persons = (
        select(ProjectPatient.person_id)
        .join(Project, Project.project_id == ProjectPatient.project_id)
        .where(Project.code == project)
        if project
        else None
    )
    return read_dvh_rows(
        session,
        person_filter=access.person_filter,
        persons=persons,
        centres=centres,
        structures=structures,
    )


def dose_metric_table(
    session: Session,
    *,
    access: ExportAccess,
    project: str | None = None,
    centres: Sequence[str] = (),
    structures: Sequence[str] = (),
    metrics: Sequence[str] = (),
    alpha_beta_gy: float | None = None,
) -> ExportTable:
    """Compute the export: one row per patient x course x dose object x structure.

    Parameters
    ----------
    access
        Permission filter and audit record of the acting user (required).
        When it offers a project view
        (:class:`etl.store.export_view.PseudonymisingAccess`: a researcher, or a
        project export), identifiers are project pseudonyms and the centre column is
        left out unless the project grants analysis by centre.
    metrics
        TG-263 metric strings (default :func:`default_export_metrics`); each becomes a
        column named as given.
    alpha_beta_gy
        When given, metrics are of the EQD2 DVH with this alpha/beta and the course's
        fractions (cells stay empty where the fractions are unknown).

    Raises
    ------
    MetricSyntaxError
        For a malformed metric.
    """
    specs = list(metrics) or default_export_metrics()
    parsed = [None if s == VOLUME_METRIC else parse_metric(s) for s in specs]
    table = ExportTable([*EXPORT_COLUMNS, *specs], [], set())
    view = view_for(access, session, project)
    loaded = _rows(session, access, project, centres, structures)
    fractions = (
        course_fractions(
            session, {r.dataset.episode_id for r in loaded if r.dataset.episode_id}
        )
        if alpha_beta_gy is not None
        else {}
    )
    for row, dataset, pseudonym, *_course in loaded:
        dvh: DVH | None = dvh_from_row(row)
        if alpha_beta_gy is not None and dvh is not None:
            episode = dataset.episode_id
            n = fractions.get(episode) if episode else None
            dvh = dvh_to_eqd2(dvh, n, alpha_beta_gy) if n else None
        values = [
            _cell(row.volume_cc if p is None else evaluate(dvh, p) if dvh else None)
            for p in parsed
        ]
        table.rows.append(
            [
                str(pseudonym or ""),
                dataset.centre,
                str(dataset.episode_id or ""),
                dataset.dose_sop_instance_uid,
                row.tg263_name or "",
                row.roi_name,
                _cell(row.volume_cc),
                *values,
            ]
        )
        table.person_ids.add(row.person_id)
    if view is not None:
        table.header, table.rows = relabel_dose_rows(table.header, table.rows, view)
    access.record(
        session,
        "export dose-metrics",
        f"{len(table.rows)} rows; metrics {', '.join(specs)}"
        + (f"; project {project}" if project else "")
        + (f"; alpha/beta {alpha_beta_gy:g} Gy" if alpha_beta_gy else ""),
        table.person_ids,
    )
    return table


def structure_matrix(
    session: Session,
    *,
    access: ExportAccess,
    project: str | None = None,
    required: Sequence[str] = (),
) -> ExportTable:
    """Completeness matrix: one row per patient, one column per required structure.

    A cell is ``1`` when the patient's structure sets hold the structure once, ``2+``
    when one structure set holds several ROIs mapped to it, ``0`` when none does.
    Without ``required``, every TG-263 name found is a column.
    """
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_set: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    persons: set[int] = set()
    names: set[str] = set()
    view = view_for(access, session, project)
    for row, dataset, pseudonym, *_course in _rows(session, access, project, (), ()):
        who = str(pseudonym or "")
        who = view.person(who) if view is not None else who
        counts[who]  # every patient gets a row
        persons.add(row.person_id)
        if row.tg263_name:
            names.add(row.tg263_name)
            per_set[(who, dataset.structure_set_sop_instance_uid, row.tg263_name)].add(
                row.roi_number
            )
    for (who, _ss, name), rois in per_set.items():
        counts[who][name] = max(counts[who][name], len(rois))
    columns = list(required) or sorted(names)
    table = ExportTable(["person_source_value", *columns], [], persons)
    for who in sorted(counts):
        cells = []
        for name in columns:
            n = counts[who].get(name, 0)
            cells.append("2+" if n >= 2 else str(n))  # noqa: PLR2004
        table.rows.append([who, *cells])
    access.record(
        session,
        "report structures",
        f"{len(table.rows)} patients; {len(columns)} structures"
        + (f"; project {project}" if project else ""),
        persons,
    )
    return table


def write_csv(path: Path | None, table: ExportTable) -> str | None:
    """Write the table as CSV to ``path`` (or return it as text when None)."""
    import io

    if path is None:
        buffer = io.StringIO()
        _write_rows(buffer, table)
        return buffer.getvalue()
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        _write_rows(handle, table)
    return None


def _write_rows(handle: io.TextIOBase | TextIO, table: ExportTable) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
