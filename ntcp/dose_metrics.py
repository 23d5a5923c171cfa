"""TG-263 dose metrics of bin-centre differential DVHs, for many patients at once.

One metric engine: the names are parsed by :func:`etl.dose.metrics.parse_metric` and
each
DVH is evaluated by :func:`etl.dose.metrics.evaluate_nodes`, the engine of the dose
metrics stored in OMOP, on the cumulative nodes of
:func:`etl.dose.dvh.cumulative_nodes`.
A row of the padded matrix is a set of point masses (the bin-centre dose holds the
bin's volume), so ``V<x>Gy[%]`` is the percentage of the volume in bins whose dose is
at least ``x`` and ``D<x>%[Gy]`` the largest bin dose that at least ``x`` % of the
volume receives. Every metric of :func:`etl.dose.metrics.parse_metric` whose unit is a
dose
or a percentage is supported; the ``cc`` forms are not (the rows hold volume
fractions). Doses are physical, or EQD2 per bin when the caller passes an EQD2 dose
matrix.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from etl.dose.dvh import cumulative_nodes
from etl.dose.metrics import Metric, evaluate_nodes, parse_metric
from etl.errors import MetricSyntaxError
from ntcp.errors import ModelSpecError

__all__ = ["dose_metric", "is_supported_metric", "parse_model_metric"]

FloatArray = NDArray[np.float64]


def parse_model_metric(spec: str) -> Metric:
    """Parse a metric usable on volume fractions.

    Raises
    ------
    ModelSpecError
        If ``spec`` is not a TG-263 metric or names an absolute volume (cc).
    """
    try:
        metric = parse_metric(spec)
    except MetricSyntaxError as exc:
        raise ModelSpecError(f"unsupported dose metric {spec!r}: {exc}") from exc
    if "cc" in (metric.value_unit, metric.output_unit):
        raise ModelSpecError(
            f"unsupported dose metric {spec!r}: the DVHs of a model hold volume "
            "fractions, not cm3; use a % metric"
        )
    return metric


def is_supported_metric(spec: str) -> bool:
    """Tell whether ``spec`` is a metric this module computes."""
    try:
        parse_model_metric(spec)
    except ModelSpecError:
        return False
    return True


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
        One value per patient (in the metric's unit); NaN for a row without volume.

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
    metric = parse_model_metric(spec)
    dose = np.atleast_2d(np.asarray(dose_gy, dtype=float))
    vol = np.atleast_2d(np.asarray(volume_fraction, dtype=float))
    total = vol.sum(axis=1)
    mean = (dose * vol).sum(axis=1) / np.where(total > 0, total, 1.0)
    out = np.full(dose.shape[0], np.nan)
    for i in range(dose.shape[0]):
        nodes = cumulative_nodes(dose[i], vol[i])
        value = evaluate_nodes(*nodes, metric, mean_gy=float(mean[i]))
        if value is not None:
            out[i] = value
    return out
