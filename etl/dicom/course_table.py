"""Course DVHs of several RTDOSE files on one structure set, without a database.

What ``rtcohort dvh --rtstruct S --rtdose A --rtdose B --fractions 25 --fractions 8
--alpha-beta 3`` shows: the plans are summed (:func:`etl.dicom.course_files.
read_course`, physical and EQD2 voxel by voxel) and each structure gets a row for the
physical course dose and, with an alpha/beta, a row for the EQD2 course dose computed
on the EQD2 sum of that structure's alpha/beta (a default, overridden per ROI). The
DVHs come from the one engine (:func:`etl.dose.structures.structure_dvhs`), the rows
from :func:`etl.dicom.dvh_table.structure_row`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from etl.dicom.course_files import read_plans
from etl.dicom.dvh_table import DvhRow, Warn, structure_row
from etl.dicom.rtstruct import StructureSet, read_rtstruct
from etl.dose.course import (
    CourseDose,
    PlanDose,
    alpha_beta_for,
    check_course,
    sum_course,
)
from etl.dose.coverage import DEFAULT_MIN_COVERAGE_PCT
from etl.dose.dvh import EndCaps
from etl.dose.metrics import Metric
from etl.dose.structures import structure_dvhs
from etl.errors import CourseDoseError, EtlError

__all__ = ["CourseRow", "CourseTable", "DoseKind", "course_rows"]


class DoseKind(StrEnum):
    """Which course dose a row describes."""

    PHYSICAL = "physical"
    EQD2 = "EQD2"


@dataclass(frozen=True)
class CourseRow:
    """One structure's row of a course: physical or EQD2 (with its alpha/beta)."""

    row: DvhRow
    kind: DoseKind
    alpha_beta_gy: float | None = None


@dataclass(frozen=True)
class CourseTable:
    """The rows (physical and EQD2 per structure), missing ROI names, the sum."""

    rows: list[CourseRow]
    missing_rois: list[str]
    course: CourseDose


def _structure_set(path: Path, first: PlanDose) -> StructureSet:
    try:
        ss = read_rtstruct(path)
    except EtlError as exc:
        raise CourseDoseError(f"{path}: structure set not usable: {exc}") from exc
    frame = first.grid.frame_of_reference_uid
    if ss.frame_of_reference_uid != frame:
        raise CourseDoseError(
            f"{path}: frame of reference {ss.frame_of_reference_uid or '(none)'} "
            f"differs from that of the doses ({first.source}: {frame or '(none)'})"
        )
    return ss


def course_rows(
    doses: Sequence[Path],
    fractions: Sequence[int | None],
    struct_path: Path,
    metrics: Sequence[Metric],
    warn: Warn,
    *,
    rois: Sequence[str] = (),
    end_caps: EndCaps | str = EndCaps.HALF,
    alpha_beta_gy: float | None = None,
    alpha_beta_roi: Mapping[str, float] | None = None,
    min_coverage_pct: float = DEFAULT_MIN_COVERAGE_PCT,
) -> CourseTable:
    """Sum the doses of a course and compute each structure's physical and EQD2 rows.

    Parameters
    ----------
    doses, fractions
        The RTDOSE files and the fractions of each (the i-th pairs with the i-th).
    struct_path
        The structure set (on the doses' frame of reference).
    metrics, warn, rois, end_caps, min_coverage_pct
        As :func:`etl.dicom.dvh_table.dvh_rows`.
    alpha_beta_gy
        The alpha/beta (Gy) of every structure; None: physical rows only.
    alpha_beta_roi
        alpha/beta of named ROIs (case-insensitive), overriding ``alpha_beta_gy``.

    Returns
    -------
    CourseTable
        Per structure its physical row, then its EQD2 row.

    Raises
    ------
    CourseDoseError
        Doses that cannot be summed (frames, orientation, fractions, incomplete beam
        set) or a structure set on another frame; the message names the file.
    """
    wanted = {r.casefold() for r in rois}
    plans = read_plans(doses, fractions)
    check_course(plans)
    ss = _structure_set(struct_path, plans[0])
    names = [r.name for r in ss.rois if not wanted or r.name.casefold() in wanted]
    ratios: dict[str, float] = {}
    if alpha_beta_gy is not None:
        ratios = {n: alpha_beta_for(n, alpha_beta_gy, alpha_beta_roi) for n in names}
    course = sum_course(plans, set(ratios.values()))
    uid = course.sop_instance_uid
    physical = structure_dvhs(
        ss, course.physical, end_caps=end_caps, names=wanted or None
    )
    by_ratio: dict[float, dict[int, DvhRow | None]] = {}
    for ab in sorted(set(ratios.values())):
        chosen = [n for n, a in ratios.items() if a == ab]
        eqd2_dvhs = structure_dvhs(ss, course.eqd2[ab], end_caps=end_caps, names=chosen)
        by_ratio[ab] = {
            d.roi.number: structure_row(
                d,
                uid,
                struct_path,
                metrics,
                _quiet,
                min_coverage_pct=min_coverage_pct,
            )
            for d in eqd2_dvhs
        }
    rows: list[CourseRow] = []
    for item in physical:
        row = structure_row(
            item, uid, struct_path, metrics, warn, min_coverage_pct=min_coverage_pct
        )
        if row is None:
            continue
        rows.append(CourseRow(row, DoseKind.PHYSICAL))
        ratio = ratios.get(item.roi.name)
        if ratio is None:
            continue
        eqd2 = by_ratio[ratio].get(item.roi.number)
        if eqd2 is not None:
            rows.append(CourseRow(eqd2, DoseKind.EQD2, ratio))
    found = {d.roi.name.casefold() for d in physical}
    return CourseTable(rows, sorted(wanted - found), course)


def _quiet(where: object, message: str) -> None:
    """Warnings of the EQD2 pass repeat those of the physical pass: not shown twice."""
