"""The dose-metric set of a stored structure: names, units and alpha/beta.

The conventions that :mod:`etl.store.dvh_rows` (metrics of one dose grid, linked
from IMAGE_FEATURE) and :mod:`etl.store.course_metrics` (metrics of a course sum,
linked to the RT course EPISODE) share: the vocabulary of our metric concepts, the
default metric set of a structure, the unit of each metric and the default alpha/beta.
Units: Gy has no verified concept id, so ``unit_concept_id`` 0 with
``unit_source_value`` ``Gy``; % and cm3 (mL) are the standard unit concepts of
:mod:`omop.vocab.standard`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from omop.vocab.standard import CM3_AS_ML, PERCENT

__all__ = [
    "ENGINE_LABEL",
    "METRIC_VOCAB",
    "VOLUME_METRIC",
    "AlphaBeta",
    "default_metrics",
    "unit_of",
]

METRIC_VOCAB = "RTC Dose Metric"
ENGINE_LABEL = "rtcohort etl.dose.dvh (end caps half, bin 0.01 Gy)"
VOLUME_METRIC = "Volume[cc]"
_BASE = (
    "Mean[Gy]",
    "Min[Gy]",
    "Max[Gy]",
    "D0.03cc[Gy]",
    "D2%[Gy]",
    "D50%[Gy]",
    "D98%[Gy]",
)
_TARGET_EXTRA = ("D95%[Gy]", "D99%[Gy]")
_V_STEPS_GY = tuple(range(5, 75, 5))


@dataclass(frozen=True)
class AlphaBeta:
    """alpha/beta (Gy) used for EQD2 of organs at risk and targets."""

    oar_gy: float = 3.0
    target_gy: float = 10.0

    def for_structure(self, target: bool) -> float:
        """Return the alpha/beta of a structure."""
        return self.target_gy if target else self.oar_gy


def default_metrics(target: bool, max_gy: float | None) -> list[str]:
    """Return the default metric set of a structure.

    Every structure: Mean, Min, Max, D0.03cc, D2%, D50%, D98%; targets also D95% and
    D99%; organs at risk also V5Gy[%] ... V70Gy[%] in 5 Gy steps up to the maximum.

    Examples
    --------
    >>> default_metrics(False, 12.0)[-2:]
    ['V5Gy[%]', 'V10Gy[%]']
    """
    metrics = list(_BASE)
    if target:
        metrics += _TARGET_EXTRA
    else:
        top = max_gy if max_gy is not None and math.isfinite(max_gy) else 0.0
        metrics += [f"V{g}Gy[%]" for g in _V_STEPS_GY if g <= top]
    return metrics


def unit_of(metric: str) -> tuple[int, str]:
    """Return (unit_concept_id, unit_source_value) of a metric (Gy, %, cm3)."""
    if metric.endswith("[%]"):
        return PERCENT, "%"
    if metric.endswith("[cc]"):
        return CM3_AS_ML, "cm3"
    return 0, "Gy"
