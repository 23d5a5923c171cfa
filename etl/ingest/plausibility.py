"""Plausibility of a dataset's dose and contours, before any DVH is computed.

The import (:mod:`etl.ingest.run`) calls :func:`plausibility_findings` once per dataset
after reading the dose grid, the structure set and the plan: a blocking finding holds
the dataset in quarantine (``dose-implausible``, ``no-contours``), a warning
(``dose-high``) is stored with it. The limits are :class:`DoseLimits` and are listed in
``docs/ingest.md``. ``DoseGridScaling`` itself (finite, > 0) is checked where the dose
is read (:func:`etl.dicom.rtdose.read_rtdose`), and the number of DVH bins is bounded in
the DVH engine (:data:`etl.dose._columns.MAX_DVH_BINS`), so the checks here are about
what is plausible, not about what is safe to compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from etl.dicom.enums import DoseSummationType
from etl.dicom.index import DoseRole
from etl.dicom.rtstruct import StructureSet
from etl.dose.grid import DoseGrid
from etl.ingest.qa import Finding, Reason

__all__ = [
    "DoseLimits",
    "check_contours",
    "check_dose_range",
    "closed_contour_counts",
    "plausibility_findings",
]

_MIN_POINTS = 3


@dataclass(frozen=True)
class DoseLimits:
    """Where the maximum of a course dose grid stops being plausible (docs/ingest.md).

    ``reference_gy`` below is the prescription the dose object stands for: the total
    prescription for a ``PLAN`` (or plan-sum) dose, the prescription per fraction for
    a ``FRACTION`` dose.

    Attributes
    ----------
    hard_factor
        Blocking above ``hard_factor * reference_gy``. 5x: Gamma Knife plans
        prescribed to the 50 % isodose reach 2x, SBRT to the 60 % isodose 1.7x; a
        cGy/Gy mix-up or a wrong DoseGridScaling gives 100x or more.
    hard_max_gy
        Blocking above this absolute maximum whatever the prescription (also when
        none is known). External-beam courses, re-irradiation plan sums included,
        stay well below 200 Gy; a brachytherapy dose grid that reaches it is not a
        course dose this platform computes DVHs for.
    hard_low_factor
        Blocking when the maximum of a single-plan ``PLAN`` dose is below
        ``hard_low_factor * reference_gy`` (the target gets at least ~95 % of the
        prescription; a Gy/cGy mix-up gives 1/100), and whenever the maximum is 0.
    soft_factor
        Warning (``dose-high``) above ``soft_factor * reference_gy``: hot spots of
        conventional plans stay below 1.2x; SRS/SBRT prescribed to a low isodose
        line legitimately exceeds 1.5x and is flagged for a look, not held.
    soft_max_gy
        Warning above this absolute maximum when no prescription is known.
    """

    hard_factor: float = 5.0
    hard_max_gy: float = 200.0
    hard_low_factor: float = 0.2
    soft_factor: float = 1.5
    soft_max_gy: float = 100.0


def check_dose_range(
    max_gy: float,
    reference_gy: float | None,
    *,
    whole_plan: bool = True,
    limits: DoseLimits = DoseLimits(),
) -> Finding | None:
    """Check the maximum of a course dose grid against its prescription.

    Parameters
    ----------
    max_gy
        Maximum of the dose grid (Gy).
    reference_gy
        Prescription the dose object stands for (Gy; see :class:`DoseLimits`), or None
        when unknown (only the absolute limits apply).
    whole_plan
        Whether the dose is the whole prescription of one plan (the low limit applies
        only then).
    limits
        The limits.

    Returns
    -------
    Finding or None
        ``dose-implausible`` (blocking) beyond a hard limit, ``dose-high`` (warning)
        beyond a soft one, else None.

    Examples
    --------
    >>> check_dose_range(600.0, 60.0).reason.value
    'dose-implausible'
    >>> check_dose_range(95.0, 60.0).reason.value
    'dose-high'
    >>> check_dose_range(66.0, 60.0) is None
    True
    """
    if not np.isfinite(max_gy) or max_gy <= 0:
        return Finding(
            Reason.DOSE_IMPLAUSIBLE, f"the dose grid's maximum is {max_gy:g} Gy"
        )
    ref = reference_gy if reference_gy and reference_gy > 0 else None
    said = f"the dose grid's maximum {max_gy:.4g} Gy"
    if max_gy > limits.hard_max_gy:
        return Finding(
            Reason.DOSE_IMPLAUSIBLE,
            f"{said} is above the limit of {limits.hard_max_gy:g} Gy",
        )
    if ref is None:
        if max_gy > limits.soft_max_gy:
            return Finding(
                Reason.DOSE_HIGH,
                f"{said} is above {limits.soft_max_gy:g} Gy (no prescription known)",
            )
        return None
    ratio = max_gy / ref
    for factor, reason in (
        (limits.hard_factor, Reason.DOSE_IMPLAUSIBLE),
        (limits.soft_factor, Reason.DOSE_HIGH),
    ):
        if ratio > factor:
            return Finding(
                reason,
                f"{said} is {ratio:.3g}x the prescription {ref:.4g} Gy "
                f"(limit {factor:g}x)",
            )
    if whole_plan and ratio < limits.hard_low_factor:
        return Finding(
            Reason.DOSE_IMPLAUSIBLE,
            f"{said} is {ratio:.3g}x the prescription {ref:.4g} Gy "
            f"(below {limits.hard_low_factor:g}x: units or scaling wrong)",
        )
    return None


def check_contours(contour_counts: Sequence[int]) -> Finding | None:
    """Hold a structure set none of whose structures has closed planar contours.

    Parameters
    ----------
    contour_counts
        Per ROI, the number of closed planar contours (0 for an ROI without contour
        data or with another geometric type).

    Examples
    --------
    >>> check_contours([0, 0]).reason.value
    'no-contours'
    >>> check_contours([0, 12]) is None
    True
    """
    if any(n > 0 for n in contour_counts):
        return None
    detail = (
        "the structure set has no ROI"
        if not contour_counts
        else f"none of its {len(contour_counts)} structure(s) has closed planar "
        "contours (no ROIContourSequence or empty contours)"
    )
    return Finding(Reason.NO_CONTOURS, detail)


def closed_contour_counts(structure_set: StructureSet) -> list[int]:
    """Per ROI, how many closed planar contours of at least three points it has."""
    return [
        sum(len(c) >= _MIN_POINTS for c in roi.contours)
        if roi.contour_type == "CLOSED_PLANAR"
        else 0
        for roi in structure_set.rois
    ]


def plausibility_findings(
    grid: DoseGrid,
    structure_set: StructureSet,
    *,
    role: DoseRole,
    prescription_gy: float | None,
    n_fractions: int | None,
    n_plans: int = 1,
    limits: DoseLimits = DoseLimits(),
) -> list[Finding]:
    """Check a dataset's contours and dose maximum; blocking findings first.

    Parameters
    ----------
    grid
        The dose grid (Gy).
    structure_set
        Its structure set.
    role
        What the dose object is. A per-beam dose (:attr:`DoseRole.BEAM`, brachytherapy
        channels included) gets no DVH and is not checked against the limits.
    prescription_gy
        Total prescription of the plan(s) the dose references (Gy), or None.
    n_fractions
        Number of fractions of the plan(s), or None; a ``FRACTION`` dose is checked
        against the prescription per fraction (against the absolute limits only when
        the fractions are unknown).
    n_plans
        Number of plans the dose references (the low limit applies to one plan only).
    limits
        The limits.

    Returns
    -------
    list of Finding
        ``no-contours`` and ``dose-implausible`` (blocking), ``dose-high`` (warning).

    Examples
    --------
    >>> import numpy as np
    >>> from etl.dicom.rtstruct import Roi, StructureSet
    >>> e = np.eye(3)
    >>> grid = DoseGrid(np.full((2, 2, 2), 600.0), np.zeros(3), e[0], e[1], e[2],
    ...                 (1.0, 1.0, 1.0))
    >>> ss = StructureSet("1.2.3", "", (Roi(1, "Empty", "", ()),))
    >>> [f.reason.value for f in plausibility_findings(
    ...     grid, ss, role=DoseRole.PLAN, prescription_gy=60.0, n_fractions=30)]
    ['no-contours', 'dose-implausible']
    """
    findings: list[Finding] = []
    empty = check_contours(closed_contour_counts(structure_set))
    if empty is not None:
        findings.append(empty)
    if role is DoseRole.BEAM:
        return findings
    reference = prescription_gy
    per_fraction = grid.summation_type == DoseSummationType.FRACTION
    if per_fraction:
        reference = (
            prescription_gy / n_fractions if prescription_gy and n_fractions else None
        )
    dose = grid.dose_gy
    max_gy = float(np.max(dose)) if dose.size else 0.0
    found = check_dose_range(
        max_gy,
        reference,
        whole_plan=role is DoseRole.PLAN and n_plans == 1,
        limits=limits,
    )
    if found is not None:
        findings.append(found)
    findings.sort(key=lambda f: not f.blocking)
    return findings
