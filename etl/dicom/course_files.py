"""Read the RTDOSE files of one course and sum them (:mod:`etl.dose.course`).

What ``rtcohort dvh --rtdose A --rtdose B`` (and the import's course stage) reads:
each file's dose grid and the header facts the sum needs (``DoseSummationType``,
referenced plan, beam number). Per-beam doses (``DoseSummationType`` BEAM) of one plan
are summed to the plan dose when every beam of the plan's fraction group is present
(:func:`etl.dose.course.sum_beams`; the RTPLAN is looked for among the given plans and
in the folders of the beam files) and refused with the reason when not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from etl.dicom.enums import DoseSummationType, normalise
from etl.dicom.io import read_dataset
from etl.dicom.rtdose import read_rtdose
from etl.dicom.rtplan import RTPlan, read_rtplan
from etl.dose.course import BeamDose, CourseDose, PlanDose, sum_beams, sum_course
from etl.errors import CourseDoseError, EtlError

__all__ = [
    "DoseFile",
    "find_plan",
    "plan_beam_numbers",
    "plan_doses",
    "read_course",
    "read_dose_file",
    "read_plans",
]


@dataclass(frozen=True)
class DoseFile:
    """One RTDOSE file of a course, read.

    Attributes
    ----------
    path : Path
    plan : PlanDose
        Its grid, the fractions given for it and its path as ``source``.
    summation_type : str
        ``DoseSummationType`` (upper case).
    plan_uid : str
        The first referenced RTPLAN's SOP Instance UID ('' when none).
    beam_number : int or None
        ``ReferencedBeamNumber`` of a per-beam dose.
    fraction_group : int or None
        ``ReferencedFractionGroupNumber``.
    """

    path: Path
    plan: PlanDose
    summation_type: str
    plan_uid: str
    beam_number: int | None
    fraction_group: int | None


def _first(items: object) -> object | None:
    seq = list(items) if isinstance(items, Iterable) else []
    return seq[0] if seq else None


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def read_dose_file(path: Path, n_fractions: int | None) -> DoseFile:
    """Read one RTDOSE of a course.

    Raises
    ------
    CourseDoseError
        When the file cannot be read as a dose (the message names it).
    """
    try:
        grid = read_rtdose(path)
        header = read_dataset(path, stop_before_pixels=True)
    except EtlError as exc:
        raise CourseDoseError(f"{path}: dose not usable: {exc}") from exc
    plan_ref = _first(header.get("ReferencedRTPlanSequence", []))
    fg_ref = _first(getattr(plan_ref, "ReferencedFractionGroupSequence", []))
    beam_ref = _first(getattr(fg_ref, "ReferencedBeamSequence", []))
    return DoseFile(
        path=path,
        plan=PlanDose(grid, n_fractions, str(path)),
        summation_type=str(
            normalise(DoseSummationType, header.get("DoseSummationType"))
        ).upper(),
        plan_uid=str(getattr(plan_ref, "ReferencedSOPInstanceUID", "") or ""),
        beam_number=_int(getattr(beam_ref, "ReferencedBeamNumber", None)),
        fraction_group=_int(getattr(fg_ref, "ReferencedFractionGroupNumber", None)),
    )


def find_plan(uid: str, folders: Iterable[Path]) -> RTPlan | None:
    """Return the RTPLAN with SOP Instance UID ``uid`` in ``folders`` (not deep)."""
    for folder in dict.fromkeys(folders):
        for file in sorted(folder.iterdir()):
            if not file.is_file() or file.name.startswith("."):
                continue
            try:
                head = read_dataset(file, stop_before_pixels=True)
            except EtlError:
                continue
            if str(head.get("SOPInstanceUID", "")) == uid and str(
                head.get("Modality", "")
            ).startswith("RTPLAN"):
                try:
                    return read_rtplan(file)
                except EtlError:
                    return None
    return None


def plan_beam_numbers(plan: RTPlan | None, group: int | None) -> tuple[int, ...] | None:
    """Return the beam numbers of a plan's fraction group (all groups: None group).

    None when the plan is not available (a beam set's completeness cannot be told).
    """
    if plan is None:
        return None
    groups = [g for g in plan.fraction_groups if group is None or g.number == group]
    return tuple(n for g in groups or plan.fraction_groups for n in g.beam_numbers)


def plan_doses(files: Sequence[DoseFile]) -> list[PlanDose]:
    """Return the plan doses of a course: plan doses as given, beam sets summed.

    Beam doses are grouped by their plan, in the order of the first beam; a complete
    set becomes one plan dose at the position of its first beam.

    Raises
    ------
    CourseDoseError
        An incomplete beam set (the reason names the missing beams and the files), or
        beams of one plan given with different fractions.
    """
    out: list[PlanDose] = []
    done: set[str] = set()
    for f in files:
        if f.summation_type != DoseSummationType.BEAM:
            out.append(f.plan)
            continue
        if f.plan_uid in done:
            continue
        done.add(f.plan_uid)
        group = [g for g in files if g.summation_type == f.summation_type]
        group = [g for g in group if g.plan_uid == f.plan_uid]
        fractions = {g.plan.n_fractions for g in group}
        if len(fractions) > 1:
            raise CourseDoseError(
                f"{f.path}: beams of plan {f.plan_uid} given with different "
                f"--fractions {sorted(fractions, key=str)}"
            )
        plan = find_plan(f.plan_uid, (g.path.parent for g in group))
        beams = [
            BeamDose(g.plan.grid, g.plan_uid, g.beam_number, str(g.path)) for g in group
        ]
        summed = sum_beams(beams, plan_beam_numbers(plan, f.fraction_group))
        if summed.grid is None:
            raise CourseDoseError(f"{f.path}: per-beam dose held: {summed.reason}")
        out.append(PlanDose(summed.grid, f.plan.n_fractions, f"{f.path} (beam sum)"))
    return out


def read_plans(
    paths: Sequence[Path], fractions: Sequence[int | None]
) -> list[PlanDose]:
    """Read the RTDOSE files of one course as plan doses (beam sets summed).

    Parameters
    ----------
    paths
        The RTDOSE files, plan doses or per-beam doses.
    fractions
        The fractions of each file (the i-th pairs with the i-th path; None unknown).

    Raises
    ------
    CourseDoseError
        Unreadable dose, an incomplete beam set, or as many fractions as files not
        given; the message names the file.
    """
    if len(paths) != len(fractions):
        raise CourseDoseError(
            f"{len(paths)} dose files but {len(fractions)} fraction counts"
        )
    files = [read_dose_file(p, n) for p, n in zip(paths, fractions, strict=True)]
    return plan_doses(files)


def read_course(
    paths: Sequence[Path],
    fractions: Sequence[int | None],
    alpha_betas_gy: Iterable[float] = (),
) -> CourseDose:
    """Read and sum the RTDOSE files of one course.

    :func:`read_plans`, then :func:`etl.dose.course.sum_course` for the alpha/beta
    values wanted.

    Raises
    ------
    CourseDoseError
        Unreadable dose, frames of reference or orientations that differ, fractions
        missing for EQD2, an incomplete beam set; the message names the file.
    """
    return sum_course(read_plans(paths, fractions), alpha_betas_gy)
