"""A few TG-263 dose metrics of bin-centre differential DVHs, for many patients at once.

Supported: ``Mean[Gy]``, ``Max[Gy]``, ``Min[Gy]``, ``V<x>Gy[%]`` (percentage of the
volume in bins whose centre dose is at least ``x`` Gy) and ``D<x>%[Gy]`` (the smallest
bin-centre dose such that at least ``x`` % of the volume receives that dose or more).
Doses are physical, or EQD2 per bin when the caller passes an EQD2 dose matrix.
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray

from ntcp.errors import ModelSpecError

__all__ = ["dose_metric", "is_supported_metric"]

FloatArray = NDArray[np.float64]

_V = re.compile(r"^V(?P<x>\d+(?:\.\d+)?)Gy\[%\]$")
_D = re.compile(r"^D(?P<x>\d+(?:\.\d+)?)%\[Gy\]$")
_SIMPLE = {"Mean[Gy]", "Max[Gy]", "Min[Gy]"}
_PERCENT = 100.0


def is_supported_metric(spec: str) -> bool:
    """Tell whether ``spec`` is one of the metrics this module computes."""
    return spec in _SIMPLE or bool(_V.match(spec)) or bool(_D.match(spec))


def dose_metric(
    dose_gy: FloatArray, volume_fraction: FloatArray, spec: str
) -> FloatArray:
    """Evaluate a TG-263 metric on each row of a padded DVH matrix.

    Parameters
    ----------
    dose_gy, volume_fraction : numpy.ndarray
        Bin-centre doses (Gy) and volume fractions, shape ``(patients, bins)``.
    spec : str
        Metric, e.g. ``"Mean[Gy]"``, ``"V20Gy[%]"``, ``"D2%[Gy]"``.

    Returns
    -------
    numpy.ndarray
        One value per patient (Gy or %).

    Raises
    ------
    ModelSpecError
        If the metric is not supported.

    Examples
    --------
    >>> d = np.array([[10.0, 30.0]]); v = np.array([[0.75, 0.25]])
    >>> float(dose_metric(d, v, "Mean[Gy]")[0]), float(dose_metric(d, v, "V20Gy[%]")[0])
    (15.0, 25.0)
    """
    dose = np.asarray(dose_gy, dtype=float)
    vol = np.asarray(volume_fraction, dtype=float)
    occupied = vol > 0
    total = vol.sum(axis=1)
    if spec == "Mean[Gy]":
        return np.asarray((dose * vol).sum(axis=1) / total)
    if spec == "Max[Gy]":
        return np.asarray(np.where(occupied, dose, -np.inf).max(axis=1))
    if spec == "Min[Gy]":
        return np.asarray(np.where(occupied, dose, np.inf).min(axis=1))
    if match := _V.match(spec):
        x = float(match["x"])
        return np.asarray(_PERCENT * (vol * (dose >= x)).sum(axis=1) / total)
    if match := _D.match(spec):
        x = float(match["x"]) / _PERCENT
        order = np.argsort(-np.where(occupied, dose, -np.inf), axis=1, kind="stable")
        d_sorted = np.take_along_axis(dose, order, axis=1)
        v_sorted = np.take_along_axis(vol, order, axis=1) / total[:, None]
        cum = np.cumsum(v_sorted, axis=1)
        k = np.argmax(cum >= x - 1e-12, axis=1)
        return np.asarray(d_sorted[np.arange(dose.shape[0]), k])
    raise ModelSpecError(
        f"unsupported dose metric {spec!r}: use Mean[Gy], Max[Gy], Min[Gy], "
        "V<x>Gy[%] or D<x>%[Gy]"
    )
