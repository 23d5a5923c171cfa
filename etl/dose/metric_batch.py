"""Many dose metrics of one DVH from one cumulative curve (the batch evaluator).

:func:`evaluate_many` returns exactly ``[evaluate(dvh, s) for s in specs]``
(:func:`etl.dose.metrics.evaluate`), but builds the cumulative DVH once and reads
all ``Dx`` and all ``Vx`` at once (``np.searchsorted`` over the array of
thresholds, the same interpolation formulas element by element). A curve whose
nodes are not monotone (which :func:`~etl.dose.metrics.evaluate` reads by binary
search all the same) is read metric by metric by the one-metric engine, so that
the results stay identical whatever the input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from etl.dose.dvh import DVH, cumulative_nodes
from etl.dose.metrics import Metric, MetricKind, evaluate_nodes, parse_metric

__all__ = ["evaluate_many"]

FloatArray = NDArray[np.float64]


def evaluate_many(dvh: DVH, specs: Sequence[str | Metric]) -> list[float | None]:
    """Evaluate several metrics on one DVH.

    Parameters
    ----------
    dvh
        The DVH.
    specs
        Metric strings (see :func:`~etl.dose.metrics.parse_metric`) or parsed
        metrics.

    Returns
    -------
    list of float or None
        One value per metric, equal to :func:`~etl.dose.metrics.evaluate` of it.

    Raises
    ------
    MetricSyntaxError
        For the first malformed metric string.

    Examples
    --------
    >>> d = DVH(2.0, 0.0, 10.0, 15.0, 20.0, 5.0, np.array([0, 0, 1.0, 1.0]))
    >>> evaluate_many(d, ["D50%[Gy]", "V12.5Gy[%]", "Max[Gy]"])
    [15.0, 75.0, 20.0]
    """
    metrics = [s if isinstance(s, Metric) else parse_metric(s) for s in specs]
    total = dvh.inside_grid_cc
    if total <= 0 or not math.isfinite(dvh.min_gy):
        return [None] * len(metrics)
    dose, volume = cumulative_nodes(dvh)
    if not len(dose) or not math.isfinite(dose[0]):
        return [None] * len(metrics)
    if len(dose) < 2 or not (_monotone(dose) and _monotone(volume[::-1])):  # noqa: PLR2004
        return [
            evaluate_nodes(dose, volume, m, mean_gy=dvh.mean_gy, total=total)
            for m in metrics
        ]
    out: list[float | None] = [None] * len(metrics)
    d_at: list[int] = []
    v_at: list[int] = []
    stats = {
        MetricKind.MEAN: dvh.mean_gy,
        MetricKind.MIN: float(dose[0]),
        MetricKind.MAX: float(dose[-1]),
    }
    for i, m in enumerate(metrics):
        if m.kind is MetricKind.DOSE_AT_VOLUME:
            d_at.append(i)
        elif m.kind is MetricKind.VOLUME_AT_DOSE:
            v_at.append(i)
        else:
            out[i] = stats[m.kind] * _scale(m)
    if d_at:
        _doses_at_volumes(dose, volume, [metrics[i] for i in d_at], total, d_at, out)
    if v_at:
        _volumes_at_doses(dose, volume, [metrics[i] for i in v_at], total, v_at, out)
    return out


def _scale(metric: Metric) -> float:
    return 100.0 if metric.output_unit == "cGy" else 1.0


def _monotone(a: FloatArray) -> bool:
    """Whether ``a`` is non-decreasing (and free of NaN)."""
    return bool(np.all(a[1:] >= a[:-1]))


def _doses_at_volumes(  # noqa: PLR0917
    dose: FloatArray,
    volume: FloatArray,
    metrics: list[Metric],
    total: float,
    where: list[int],
    out: list[float | None],
) -> None:
    """``Dx`` of every metric: :func:`etl.dose.metrics._dose_at_volume`, at once."""
    vs = []
    for m in metrics:
        assert m.value is not None
        vs.append(m.value * total / 100.0 if m.value_unit == "%" else m.value)
    v = np.array(vs, dtype=np.float64)
    rev_v, rev_d = volume[::-1], dose[::-1]
    n = len(rev_v)
    pos = np.searchsorted(rev_v, v, side="left")
    inner = np.clip(pos, 1, n - 1)
    v0, v1 = rev_v[inner - 1], rev_v[inner]
    d0, d1 = rev_d[inner - 1], rev_d[inner]
    with np.errstate(divide="ignore", invalid="ignore"):
        lin = d0 + (v - v0) * (d1 - d0) / (v1 - v0)
    value = np.where(v1 == v0, d1, lin)
    value = np.where(pos == 0, rev_d[0], np.where(pos >= n, rev_d[-1], value))
    limit = total * (1 + 1e-12)
    for k, (i, m) in enumerate(zip(where, metrics, strict=True)):
        if vs[k] > limit:
            continue
        out[i] = float(value[k]) * _scale(m)


def _volumes_at_doses(  # noqa: PLR0917
    dose: FloatArray,
    volume: FloatArray,
    metrics: list[Metric],
    total: float,
    where: list[int],
    out: list[float | None],
) -> None:
    """``Vx`` of every metric: :func:`etl.dose.metrics._volume_at_dose`, at once."""
    x = np.array([m.value for m in metrics], dtype=np.float64)
    n = len(dose)
    pos = np.minimum(np.searchsorted(dose, x, side="left"), n - 1)
    # Strictly between two nodes, np.interp over all nodes finds the same pair of
    # nodes (and the same formula) as over the two.
    v_cc = np.interp(x, dose, volume)
    v_cc = np.where(dose[pos] == x, volume[pos], v_cc)
    v_cc = np.where(x > dose[-1], 0.0, v_cc)
    v_cc = np.where(x <= dose[0], total, v_cc)
    for k, (i, m) in enumerate(zip(where, metrics, strict=True)):
        value = float(v_cc[k])
        out[i] = value / total * 100.0 if m.output_unit == "%" else value
