"""PROM trajectories by timepoint; share with a clinically relevant deterioration.

The direction of each scale (functional and global health: higher is better; symptom:
higher is worse) is read from the instrument's shipped scale metadata
(:func:`instruments.registry.get_instrument`), so the rule is the QLQ-C30 rule of
Osoba et al.: a fall of at least 10 points on a functional scale, global health (QL2)
or the summary score, a rise of at least 10 on a symptom scale.

References
----------
Osoba D et al. Interpreting the significance of changes in health-related quality-of-
life scores. J Clin Oncol 1998;16:139-144.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from scipy.stats import t as t_dist

from cohort.benchmark.errors import BenchmarkInputError
from instruments.errors import InstrumentSpecError
from instruments.registry import get_instrument
from instruments.scoring import ScaleType

__all__ = [
    "PROM_COLUMNS",
    "deterioration_share",
    "scale_direction",
    "trajectory",
    "with_interval",
]

#: Columns a PROM score table must have.
PROM_COLUMNS = ("pseudonym", "timepoint", "scale", "score")
_THRESHOLD_POINTS = 10.0
_MIN_FOR_INTERVAL = 2


def _check(df: pd.DataFrame, by: Sequence[str]) -> None:
    missing = [c for c in (*PROM_COLUMNS, *by) if c not in df.columns]
    if missing:
        raise BenchmarkInputError(f"PROM table: missing column(s) {missing}")


def scale_direction(scales: Sequence[str], instrument: str = "QLQ-C30") -> pd.Series:
    """Return +1 where a higher score is better, -1 where it is worse, per scale code.

    Parameters
    ----------
    scales : sequence of str
        Scale codes of the instrument (e.g. ``PF2``, ``QL2``, ``FA``, ``SUMMARY``).
    instrument : str
        Instrument code in the shipped registry.

    Returns
    -------
    pandas.Series
        Index: the distinct codes; values +1 or -1.

    Examples
    --------
    >>> scale_direction(["PF2", "QL2", "FA"]).tolist()
    [1, 1, -1]
    """
    spec = get_instrument(instrument).spec
    out = {}
    for code in dict.fromkeys(map(str, scales)):
        if code == spec.summary_code:
            out[code] = 1
            continue
        try:
            kind = spec.scale(code).scale_type
        except InstrumentSpecError:
            raise BenchmarkInputError(
                f"scale: {instrument} has no scale {code!r}"
            ) from None
        out[code] = -1 if kind is ScaleType.SYMPTOM else 1
    return pd.Series(out, dtype=np.int64)


def trajectory(df: pd.DataFrame, *, by: Sequence[str] = ()) -> pd.DataFrame:
    r"""Mean score, number of patients and 95% t-interval by timepoint and scale.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``pseudonym``, ``timepoint``, ``scale``, ``score`` (0-100; missing
        scores are left out).
    by : sequence of str
        Extra grouping columns placed first (e.g. ``("centre",)``).

    Returns
    -------
    pandas.DataFrame
        ``*by``, ``timepoint``, ``scale``, ``n``, ``mean``, ``sd``, ``lower_95``,
        ``upper_95`` (:math:`\bar x \pm t_{0.975, n-1} s/\sqrt n`; NaN for n < 2).
        Timepoints keep their categorical order when ``timepoint`` is categorical.

    Examples
    --------
    >>> d = pd.DataFrame({"pseudonym": ["a", "b"], "timepoint": ["baseline"] * 2,
    ...                   "scale": ["QL2"] * 2, "score": [50.0, 70.0]})
    >>> t = trajectory(d)
    >>> r = t.iloc[0]
    >>> int(r["n"]), float(r["mean"]), round(float(r["lower_95"]), 2)
    (2, 60.0, -67.06)
    """
    _check(df, by)
    keys = [*by, "timepoint", "scale"]
    scored = df.loc[df["score"].notna(), [*keys, "score"]]
    agg = (
        scored.groupby(keys, observed=True, sort=True)["score"]
        .agg(n="count", mean="mean", sd="std")
        .reset_index()
    )
    return with_interval(agg)


def with_interval(agg: pd.DataFrame) -> pd.DataFrame:
    """Add the 95% t-interval of the mean to a table of ``n, mean, sd`` (in place).

    ``lower_95``, ``upper_95``: NaN where n < 2; ``n`` becomes int64. Shared by
    :func:`trajectory` and the SQL aggregation of the benchmark read.
    """
    n = agg["n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = t_dist.ppf(0.975, n - 1.0) * agg["sd"].to_numpy() / np.sqrt(n)
    half = np.where(n >= _MIN_FOR_INTERVAL, half, np.nan)
    agg["lower_95"] = agg["mean"] - half
    agg["upper_95"] = agg["mean"] + half
    agg["n"] = agg["n"].astype(np.int64)
    return agg


def deterioration_share(
    df: pd.DataFrame,
    baseline: str = "baseline",
    *,
    by: Sequence[str] = (),
    instrument: str = "QLQ-C30",
    threshold_points: float = _THRESHOLD_POINTS,
) -> pd.DataFrame:
    """Share of patients with a clinically relevant deterioration from baseline.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``pseudonym``, ``timepoint``, ``scale``, ``score``; at most one row per
        patient, timepoint and scale.
    baseline : str
        The baseline timepoint's label.
    by : sequence of str
        Extra grouping columns (e.g. ``("centre",)``); constant within a patient.
    instrument : str
        Instrument whose scale metadata gives each scale's direction.
    threshold_points : float
        Minimal change in points (10).

    Returns
    -------
    pandas.DataFrame
        One row per ``*by``, follow-up ``timepoint`` and ``scale``: ``n`` (patients
        with a baseline and a follow-up score), ``n_deteriorated``, ``share``
        (NaN where n is 0).

    Examples
    --------
    >>> d = pd.DataFrame({"pseudonym": ["a", "a", "b", "b"],
    ...                   "timepoint": ["baseline", "6m"] * 2, "scale": ["FA"] * 4,
    ...                   "score": [20.0, 40.0, 30.0, 35.0]})
    >>> deterioration_share(d)[["timepoint", "n", "share"]].values.tolist()
    [['6m', 2, 0.5]]
    """
    _check(df, by)
    dup = df.duplicated(["pseudonym", "timepoint", "scale"])
    if dup.any():
        row = df.loc[dup].iloc[0]
        raise BenchmarkInputError(
            f"PROM table: more than one score for patient {row['pseudonym']!r}, "
            f"timepoint {row['timepoint']!r}, scale {row['scale']!r}"
        )
    scored = df.loc[df["score"].notna()]
    base = scored.loc[scored["timepoint"] == baseline, ["pseudonym", "scale", "score"]]
    follow = scored.loc[scored["timepoint"] != baseline]
    pairs = follow.merge(
        base.rename(columns={"score": "baseline_score"}), on=["pseudonym", "scale"]
    )
    direction = scale_direction(df["scale"].unique().tolist(), instrument)
    sign = pairs["scale"].astype(str).map(direction).to_numpy(dtype=float)
    change = pairs["score"].to_numpy(float) - pairs["baseline_score"].to_numpy(float)
    pairs["deteriorated"] = (-sign * change) >= threshold_points
    keys = [*by, "timepoint", "scale"]
    out = (
        pairs.groupby(keys, observed=True, sort=True)["deteriorated"]
        .agg(n="count", n_deteriorated="sum")
        .reset_index()
    )
    out["n"] = out["n"].astype(np.int64)
    out["n_deteriorated"] = out["n_deteriorated"].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share"] = out["n_deteriorated"] / out["n"].where(out["n"] > 0)
    return out
