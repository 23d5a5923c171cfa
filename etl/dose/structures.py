"""The DVH of every structure of a structure set on one dose grid.

The one per-structure loop of the platform: ``rtcohort dvh`` and the import pipeline
(:mod:`etl.ingest.run`) both call :func:`structure_dvhs` and decide themselves what a
skipped structure or a data-quality warning means for them (a warning line, a QA
finding). Structures without contours or whose contours are not ``CLOSED_PLANAR`` get
no DVH; one whose DVH fails (:class:`~etl.errors.EtlError`) is reported with the error,
and the others go on.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from etl.dicom.rtstruct import Roi, StructureSet
from etl.dose.dvh import DVH, EndCaps, compute_dvh
from etl.dose.grid import DoseGrid
from etl.errors import EtlError

__all__ = ["Skip", "StructureDVH", "structure_dvhs"]


class Skip(StrEnum):
    """Why a structure has no DVH."""

    NO_CONTOURS = "no-contours"
    NOT_CLOSED_PLANAR = "not-closed-planar"
    FAILED = "failed"


@dataclass(frozen=True)
class StructureDVH:
    """The outcome for one ROI: its DVH, or why there is none.

    Attributes
    ----------
    roi : Roi
        The structure (number, name, contour type, interpreted type).
    dvh : DVH or None
        The DVH (physical dose, Gy); ``None`` when skipped.
    skipped : Skip or None
        Why there is no DVH.
    error : EtlError or None
        The failure, when ``skipped`` is :attr:`Skip.FAILED`.
    caught : tuple of warnings.WarningMessage
        Warnings raised while computing the DVH (e.g.
        :class:`~etl.errors.OutsideGridWarning`), in order.
    """

    roi: Roi
    dvh: DVH | None
    skipped: Skip | None = None
    error: EtlError | None = None
    caught: tuple[warnings.WarningMessage, ...] = ()

    def warned(self, category: type[Warning]) -> bool:
        """Return whether a warning of ``category`` was raised."""
        return any(issubclass(w.category, category) for w in self.caught)


def structure_dvhs(
    structure_set: StructureSet,
    grid: DoseGrid,
    *,
    end_caps: EndCaps | str = EndCaps.HALF,
    target_samples: int | None = None,
    names: Collection[str] | None = None,
) -> list[StructureDVH]:
    """Compute the DVH of each ROI of ``structure_set`` on ``grid``.

    Parameters
    ----------
    structure_set : StructureSet
        The contours (:func:`etl.dicom.rtstruct.read_rtstruct`).
    grid : DoseGrid
        The dose (:func:`etl.dicom.rtdose.read_rtdose`); the caller checks the frames of
        reference.
    end_caps : EndCaps or str
        How far a structure extends beyond its outer contour planes.
    target_samples : int, optional
        Sample budget of :func:`etl.dose.dvh.compute_dvh` (its default when ``None``).
    names : collection of str, optional
        Only ROIs with these names (case-insensitive); all when ``None``.

    Returns
    -------
    list of StructureDVH
        One per (selected) ROI, in the order of the structure set.

    Examples
    --------
    >>> import numpy as np
    >>> from etl.dicom.rtstruct import Roi, StructureSet
    >>> e = np.eye(3)
    >>> grid = DoseGrid(np.full((3, 3, 3), 2.0), np.zeros(3), e[0], e[1], e[2],
    ...                 (1.0, 1.0, 1.0))
    >>> ss = StructureSet("1.2.3", "", (Roi(1, "Empty", "", ()),))
    >>> [(s.roi.name, str(s.skipped)) for s in structure_dvhs(ss, grid)]
    [('Empty', 'no-contours')]
    """
    wanted = None if names is None else {n.casefold() for n in names}
    kwargs: dict[str, int] = {}
    if target_samples is not None:
        kwargs["target_samples"] = target_samples
    found: list[StructureDVH] = []
    for roi in structure_set.rois:
        if wanted is not None and roi.name.casefold() not in wanted:
            continue
        if not roi.contours:
            found.append(StructureDVH(roi, None, Skip.NO_CONTOURS))
            continue
        if roi.contour_type != "CLOSED_PLANAR":
            found.append(StructureDVH(roi, None, Skip.NOT_CLOSED_PLANAR))
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                dvh = compute_dvh(roi.contours, grid, end_caps=end_caps, **kwargs)
            except EtlError as exc:
                failed = StructureDVH(roi, None, Skip.FAILED, exc, tuple(caught))
                found.append(failed)
                continue
        found.append(StructureDVH(roi, dvh, caught=tuple(caught)))
    return found
