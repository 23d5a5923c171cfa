"""Dose metrics in TG-263 syntax, interpolated on the cumulative DVH (pure numpy).

Supported forms (TG-263 section on DVH metric nomenclature)::

    Mean[Gy]  Min[Gy]  Max[Gy]          statistics (also [cGy])
    D95%[Gy]  D0.03cc[Gy]               minimum dose to the hottest x % or x cc
    V20Gy[%]  V20Gy[cc]  V2000cGy[%]    volume receiving at least x

Percentages refer to the part of the structure inside the dose grid (the DVH volume).
Doses at a given volume are interpolated linearly on the cumulative DVH, whose first and
last nodes are the exact minimum and maximum: ``D0.03cc`` of a small structure is never
rounded down to a bin edge, and never 0 unless the dose is.

References
----------
Mayo CS, Moran JM, Bosch W, et al. American Association of Physicists in Medicine Task
Group 263: standardizing nomenclatures in radiation oncology. Int J Radiat Oncol Biol
Phys 2018;100:1057-66.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from etl.dose.dvh import DVH, cumulative_nodes
from etl.errors import MetricSyntaxError

__all__ = [
    "Metric",
    "MetricKind",
    "cumulative_nodes",
    "evaluate",
    "evaluate_nodes",
    "parse_metric",
]

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_PATTERN = re.compile(
    rf"^(?:(?P<stat>Mean|Min|Max)|D{_NUMBER}(?P<dunit>%|cc)|V(?P<v>{_NUMBER[1:-1]})"
    r"(?P<vunit>Gy|cGy))\[(?P<out>Gy|cGy|%|cc)\]$"
)


class MetricKind(StrEnum):
    """What a metric measures."""

    MEAN = "Mean"
    MIN = "Min"
    MAX = "Max"
    DOSE_AT_VOLUME = "D"
    VOLUME_AT_DOSE = "V"


@dataclass(frozen=True)
class Metric:
    """A parsed metric.

    Attributes
    ----------
    spec : str
        The string as given.
    kind : MetricKind
    value : float or None
        The ``x`` of ``Dx`` (in % or cc) or ``Vx`` (in Gy, converted from cGy).
    value_unit : str or None
        ``%`` or ``cc`` for D metrics, ``Gy`` for V metrics.
    output_unit : str
        ``Gy``, ``cGy``, ``%`` or ``cc``.
    """

    spec: str
    kind: MetricKind
    value: float | None
    value_unit: str | None
    output_unit: str


def parse_metric(spec: str) -> Metric:
    """Parse a TG-263 metric string.

    Parameters
    ----------
    spec
        E.g. ``"D95%[Gy]"``, ``"V20Gy[%]"``, ``"Mean[Gy]"``.

    Raises
    ------
    MetricSyntaxError
        When the string is not a supported metric, names incompatible units, or a
        percentage beyond 100.

    Examples
    --------
    >>> parse_metric("D0.03cc[Gy]").value
    0.03
    >>> parse_metric("D95[Gy]")
    Traceback (most recent call last):
    etl.errors.MetricSyntaxError: 'D95[Gy]': not a TG-263 dose metric; ...
    """
    if not isinstance(spec, str):
        raise _malformed(spec)
    return _parse(spec)


def _malformed(spec: object) -> MetricSyntaxError:
    return MetricSyntaxError(
        f"{spec!r}: not a TG-263 dose metric; expected e.g. Mean[Gy], Max[Gy], "
        "D95%[Gy], D0.03cc[Gy], V20Gy[%], V20Gy[cc]"
    )


@lru_cache(maxsize=4096)
def _parse(spec: str) -> Metric:
    """Parse a metric string (remembered: a :class:`Metric` is immutable)."""
    m = _PATTERN.match(spec.strip())
    if m is None:
        raise _malformed(spec)
    out = m.group("out")
    if m.group("stat"):
        if out not in ("Gy", "cGy"):
            raise MetricSyntaxError(f"{spec!r}: {m.group('stat')} is a dose; use [Gy]")
        return Metric(spec, MetricKind(m.group("stat")), None, None, out)
    if m.group("dunit"):
        if out not in ("Gy", "cGy"):
            raise MetricSyntaxError(f"{spec!r}: D metrics give a dose; use [Gy]")
        value = float(m.group(2))
        if m.group("dunit") == "%" and value > 100:  # noqa: PLR2004
            raise MetricSyntaxError(f"{spec!r}: percentage above 100")
        return Metric(spec, MetricKind.DOSE_AT_VOLUME, value, m.group("dunit"), out)
    if out not in ("%", "cc"):
        raise MetricSyntaxError(f"{spec!r}: V metrics give a volume; use [%] or [cc]")
    value = float(m.group("v")) * (0.01 if m.group("vunit") == "cGy" else 1.0)
    return Metric(spec, MetricKind.VOLUME_AT_DOSE, value, "Gy", out)


def _dose_at_volume(
    dose: NDArray[np.float64], volume: NDArray[np.float64], v: float
) -> float:
    # volume is non-increasing in dose; find the largest dose still receiving >= v.
    rev_v, rev_d = volume[::-1], dose[::-1]
    pos = int(np.searchsorted(rev_v, v, side="left"))
    if pos == 0:
        return float(rev_d[0])
    if pos >= len(rev_v):
        return float(rev_d[-1])
    v0, v1 = rev_v[pos - 1], rev_v[pos]
    d0, d1 = rev_d[pos - 1], rev_d[pos]
    return float(d1 if v1 == v0 else d0 + (v - v0) * (d1 - d0) / (v1 - v0))


def evaluate(dvh: DVH, spec: str | Metric) -> float | None:
    """Evaluate a metric on a DVH.

    Parameters
    ----------
    dvh
        The DVH.
    spec
        A metric string (see :func:`parse_metric`) or a parsed :class:`Metric`.

    Returns
    -------
    float or None
        The value in the metric's output unit; None when undefined for this structure
        (nothing inside the dose grid, or ``Dx cc`` with ``x`` above the volume).

    Raises
    ------
    MetricSyntaxError
        For a malformed metric string.

    Examples
    --------
    >>> import numpy as np
    >>> d = DVH(2.0, 0.0, 10.0, 15.0, 20.0, 5.0, np.array([0, 0, 1.0, 1.0]))
    >>> evaluate(d, "D50%[Gy]"), evaluate(d, "V12.5Gy[%]"), evaluate(d, "Max[Gy]")
    (15.0, 75.0, 20.0)
    """
    metric = spec if isinstance(spec, Metric) else parse_metric(spec)
    total = dvh.inside_grid_cc
    if total <= 0 or not math.isfinite(dvh.min_gy):
        return None
    dose, volume = cumulative_nodes(dvh)
    return evaluate_nodes(dose, volume, metric, mean_gy=dvh.mean_gy, total=total)


def evaluate_nodes(
    dose_gy: NDArray[np.float64],
    volume: NDArray[np.float64],
    spec: str | Metric,
    *,
    mean_gy: float,
    total: float | None = None,
) -> float | None:
    """Evaluate a metric on the nodes of a cumulative DVH (the one metric engine).

    Parameters
    ----------
    dose_gy, volume
        Nodes from :func:`etl.dose.dvh.cumulative_nodes`: non-decreasing doses from the
        minimum to the maximum, the volume receiving at least each.
    spec
        A metric string or a parsed :class:`Metric`.
    mean_gy
        The mean dose (not recoverable from the nodes for a binned DVH).
    total
        The total volume; the volume of the first node by default.

    Returns
    -------
    float or None
        As :func:`evaluate`. ``Vx`` is the volume receiving at least ``x``: at a
        dose where the cumulative DVH steps (point masses), the volume before the
        step.

    Examples
    --------
    >>> d, v = cumulative_nodes(np.array([10.0, 30.0]), np.array([0.75, 0.25]))
    >>> evaluate_nodes(d, v, "V30Gy[%]", mean_gy=15.0), evaluate_nodes(
    ...     d, v, "D50%[Gy]", mean_gy=15.0)
    (25.0, 10.0)
    """
    metric = spec if isinstance(spec, Metric) else parse_metric(spec)
    scale = 100.0 if metric.output_unit == "cGy" else 1.0
    if total is None:
        total = float(volume[0]) if len(volume) else 0.0
    if total <= 0 or not len(dose_gy) or not math.isfinite(dose_gy[0]):
        return None
    min_gy, max_gy = float(dose_gy[0]), float(dose_gy[-1])
    if metric.kind is MetricKind.MEAN:
        return mean_gy * scale
    if metric.kind is MetricKind.MIN:
        return min_gy * scale
    if metric.kind is MetricKind.MAX:
        return max_gy * scale
    assert metric.value is not None
    if metric.kind is MetricKind.DOSE_AT_VOLUME:
        v = metric.value * total / 100.0 if metric.value_unit == "%" else metric.value
        if v > total * (1 + 1e-12):
            return None
        return _dose_at_volume(dose_gy, volume, v) * scale
    v_cc = _volume_at_dose(dose_gy, volume, metric.value, total)
    return v_cc / total * 100.0 if metric.output_unit == "%" else v_cc


def _volume_at_dose(
    dose: NDArray[np.float64], volume: NDArray[np.float64], x: float, total: float
) -> float:
    # Volume receiving at least x: at a node the first (left-limit) volume there.
    if x <= dose[0]:
        return total
    if x > dose[-1]:
        return 0.0
    pos = int(np.searchsorted(dose, x, side="left"))
    if dose[pos] == x:
        return float(volume[pos])
    return float(np.interp(x, dose[pos - 1 : pos + 1], volume[pos - 1 : pos + 1]))
