r"""The dose of an RT course of several plans: physical and EQD2 sums (pure numpy).

A course often has several plans (sequential boost, adaptation) with different
fractionations. Plans on one frame of reference are summed on the union of their grids
(:func:`etl.dose.resample.union_grid`, trilinear resampling), physically and in EQD2
voxel by voxel, each plan with its own dose per fraction:

.. math::

    D_\mathrm{course}(x) = \sum_p D_p(x), \qquad
    \mathrm{EQD2}_\mathrm{course}(x) = \sum_p D_p(x)\,
    \frac{D_p(x)/n_p + \alpha/\beta}{2 + \alpha/\beta}

(:func:`etl.dose.radiobiology.eqd2_gy`). One EQD2 grid is summed per alpha/beta value
needed, so each structure's DVH is computed with its own alpha/beta
(:func:`alpha_beta_for`) by the one DVH engine (:func:`etl.dose.structures.
structure_dvhs`) on the summed grid. Plans on different frames of reference are not
summed (no deformable registration): :class:`~etl.errors.CourseDoseError` names both
files.

A per-beam dose set (``DoseSummationType`` BEAM, one object per beam of one plan) is
summed to the plan dose by :func:`sum_beams` when every beam of the plan's fraction
group is present, and held with the reason when not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from etl.dicom.enums import DoseSummationType, DoseType
from etl.dose.grid import DoseGrid
from etl.dose.radiobiology import eqd2_gy
from etl.dose.resample import check_aligned, resample_to, union_grid
from etl.errors import CourseDoseError

__all__ = [
    "BeamDose",
    "BeamSum",
    "CourseDose",
    "PlanDose",
    "alpha_beta_for",
    "check_course",
    "sum_beams",
    "sum_course",
]


@dataclass(frozen=True)
class PlanDose:
    """The dose of one plan of a course.

    Attributes
    ----------
    grid : DoseGrid
        The plan's total dose (all fractions), Gy.
    n_fractions : int or None
        Fractions of the plan; required for EQD2.
    source : str
        Names the plan in messages (its file).
    """

    grid: DoseGrid
    n_fractions: int | None
    source: str


@dataclass(frozen=True)
class CourseDose:
    """The summed dose of a course.

    Attributes
    ----------
    physical : DoseGrid
        Sum of the plans' physical doses on the union grid (Gy).
    eqd2 : dict of float to DoseGrid
        Sum of the plans' EQD2, one grid per alpha/beta (Gy), keyed by alpha/beta.
    sources : tuple of str
        The plans summed, in order.
    n_fractions : tuple of int or None
        Their fractions.
    """

    physical: DoseGrid
    eqd2: dict[float, DoseGrid] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    n_fractions: tuple[int | None, ...] = ()

    @property
    def sop_instance_uid(self) -> str:
        """The SOP Instance UIDs of the summed doses, joined by ``+``."""
        return self.physical.sop_instance_uid


def alpha_beta_for(
    roi_name: str, default_gy: float, overrides: Mapping[str, float] | None = None
) -> float:
    """Return the alpha/beta (Gy) of a structure: its override, else the default.

    ROI names are compared without regard to case.

    Examples
    --------
    >>> alpha_beta_for("PTV", 3.0, {"ptv": 10.0}), alpha_beta_for("Cord", 3.0)
    (10.0, 3.0)
    """
    folded = {k.casefold(): v for k, v in (overrides or {}).items()}
    return float(folded.get(roi_name.casefold(), default_gy))


def check_course(plans: Sequence[PlanDose], *, need_fractions: bool = False) -> None:
    """Raise :class:`~etl.errors.CourseDoseError` unless the plans can be summed.

    The frames of reference must be equal (the message names both files), each grid
    aligned with the first (:func:`etl.dose.resample.check_aligned`), and with
    ``need_fractions`` every plan must have a positive number of fractions.
    """
    if not plans:
        raise CourseDoseError("a course needs at least one dose")
    first = plans[0]
    for plan in plans[1:]:
        if plan.grid.frame_of_reference_uid != first.grid.frame_of_reference_uid:
            raise CourseDoseError(
                f"{plan.source}: frame of reference "
                f"{plan.grid.frame_of_reference_uid or '(none)'} differs from that of "
                f"{first.source} ({first.grid.frame_of_reference_uid or '(none)'}); "
                "plans on different frames of reference are not summed (no "
                "registration)"
            )
        check_aligned(first.grid, plan.grid, plan.source)
    if need_fractions:
        for plan in plans:
            if plan.n_fractions is None or plan.n_fractions < 1:
                raise CourseDoseError(
                    f"{plan.source}: number of fractions unknown "
                    f"({plan.n_fractions!r}); EQD2 needs each plan's fractions"
                )


def sum_course(
    plans: Sequence[PlanDose], alpha_betas_gy: Iterable[float] = ()
) -> CourseDose:
    """Sum the plans of a course physically and in EQD2 for each alpha/beta.

    Parameters
    ----------
    plans
        The plans (:func:`check_course` is applied; fractions are required when
        ``alpha_betas_gy`` is not empty).
    alpha_betas_gy
        The alpha/beta values (Gy) whose EQD2 sums are wanted.

    Returns
    -------
    CourseDose

    Raises
    ------
    CourseDoseError
        Frames of reference differ, a grid is rotated, or fractions are missing.

    Examples
    --------
    >>> e = np.eye(3)
    >>> g = DoseGrid(np.full((2, 2, 2), 50.0), np.zeros(3), e[0], e[1], e[2],
    ...              (1.0, 1.0, 1.0), frame_of_reference_uid="1.2")
    >>> boost = replace(g, dose_gy=np.full((2, 2, 2), 10.0))
    >>> c = sum_course([PlanDose(g, 25, "A"), PlanDose(boost, 5, "B")], [3.0])
    >>> float(c.physical.dose_gy.max()), float(c.eqd2[3.0].dose_gy.max())
    (60.0, 60.0)
    """
    wanted = sorted({float(a) for a in alpha_betas_gy})
    check_course(plans, need_fractions=bool(wanted))
    grids = [p.grid for p in plans]
    base = union_grid(grids)
    physical = np.zeros(base.shape)
    eqd2 = {a: np.zeros(base.shape) for a in wanted}
    for plan in plans:
        dose = resample_to(plan.grid, base)
        physical += dose
        for a in wanted:
            eqd2[a] += eqd2_gy(dose, plan.n_fractions or 1, a)
    uid = "+".join(g.sop_instance_uid for g in grids)
    summed = replace(
        base,
        dose_gy=physical,
        sop_instance_uid=uid,
        summation_type=DoseSummationType.MULTI_PLAN,
        dose_type=DoseType.PHYSICAL,
    )
    return CourseDose(
        physical=summed,
        eqd2={a: replace(summed, dose_gy=d, dose_type="EQD2") for a, d in eqd2.items()},
        sources=tuple(p.source for p in plans),
        n_fractions=tuple(p.n_fractions for p in plans),
    )


@dataclass(frozen=True)
class BeamDose:
    """The dose of one beam of a plan (``DoseSummationType`` BEAM).

    Attributes
    ----------
    grid : DoseGrid
    plan_uid : str
        The referenced RTPLAN's SOP Instance UID.
    beam_number : int or None
        ``ReferencedBeamNumber`` (None when the object names no beam).
    source : str
        Its file.
    """

    grid: DoseGrid
    plan_uid: str
    beam_number: int | None
    source: str


@dataclass(frozen=True)
class BeamSum:
    """The plan dose summed from its beams, or the reason it is held.

    Attributes
    ----------
    plan_uid : str
    grid : DoseGrid or None
        The plan dose (``DoseSummationType`` PLAN) when the set is complete.
    reason : str
        Why it is held (empty when summed).
    sources : tuple of str
        The beam files.
    """

    plan_uid: str
    grid: DoseGrid | None
    reason: str
    sources: tuple[str, ...]


def sum_beams(beams: Sequence[BeamDose], plan_beams: Collection[int] | None) -> BeamSum:
    """Sum the per-beam doses of one plan when every beam of the plan is there.

    Parameters
    ----------
    beams
        The beam doses referencing one plan.
    plan_beams
        The beam numbers of the plan's fraction group(s)
        (:attr:`etl.dicom.rtplan.FractionGroup.beam_numbers`); None when the plan
        is not available (the set is held: completeness cannot be told).

    Returns
    -------
    BeamSum
        The plan dose, or ``grid=None`` with the reason (missing beams named).

    Examples
    --------
    >>> e = np.eye(3)
    >>> g = DoseGrid(np.ones((1, 1, 1)), np.zeros(3), e[0], e[1], e[2], (1, 1, 1))
    >>> s = sum_beams([BeamDose(g, "1.9", 1, "b1.dcm")], [1, 2])
    >>> s.grid is None, s.reason
    (True, 'plan 1.9: beam 2 of 2 missing (have 1 from b1.dcm)')
    """
    sources = tuple(b.source for b in beams)
    uid = beams[0].plan_uid if beams else ""
    have = Counter(b.beam_number for b in beams)
    held = _beam_problem(uid, beams, have, plan_beams)
    if held:
        return BeamSum(uid, None, held, sources)
    plans = [PlanDose(b.grid, None, b.source) for b in beams]
    total = sum_course(plans).physical
    grid = replace(
        total,
        sop_instance_uid="+".join(b.grid.sop_instance_uid for b in beams),
        summation_type=DoseSummationType.PLAN,
    )
    return BeamSum(uid, grid, "", sources)


def _beam_problem(
    uid: str,
    beams: Sequence[BeamDose],
    have: Counter[int | None],
    plan_beams: Collection[int] | None,
) -> str:
    """Why a beam set cannot be summed ('' when it can)."""
    files = ", ".join(b.source for b in beams)
    if not beams:
        return "no beam dose"
    if len({b.plan_uid for b in beams}) > 1:
        return f"beam doses of different plans: {files}"
    if plan_beams is None:
        return (
            f"plan {uid} not available: cannot tell whether every beam is present "
            f"({files})"
        )
    if None in have:
        return f"plan {uid}: a beam dose names no ReferencedBeamNumber ({files})"
    doubled = sorted(n for n, c in have.items() if n is not None and c > 1)
    if doubled:
        return f"plan {uid}: beam {', '.join(map(str, doubled))} given twice ({files})"
    missing = sorted(set(plan_beams) - set(have))
    if missing:
        return (
            f"plan {uid}: beam {', '.join(map(str, missing))} of {len(set(plan_beams))}"
            f" missing (have {', '.join(str(n) for n in sorted(have, key=str))} "
            f"from {files})"
        )
    extra = sorted(n for n in have if n is not None and n not in set(plan_beams))
    if extra:
        return f"plan {uid}: beam {', '.join(map(str, extra))} not in the plan"
    return ""
