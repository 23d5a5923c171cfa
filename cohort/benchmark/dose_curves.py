"""The curves of the population DVH band: per kept curve its samples and centre.

:func:`band_curves` reads the samples stored with the DVHs
(:mod:`etl.store.dvh_samples`) at their step and alpha/beta, and samples each curve at
read time (:func:`etl.dose.dvh_sample.sample_cumulative`) otherwise -- or for the
curves without a usable stored row (stored before the summary, or whose course's
fractions changed since). Either way one patient's curve: the structure in the
patient's latest dataset, of the fractionation scheme asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from etl.dose.dvh_sample import sample_cumulative
from etl.store.dvh_read import LatestCurve, read_latest_curves
from etl.store.dvh_rows import dvh_from_row
from etl.store.dvh_samples import (
    PHYSICAL,
    SAMPLED_ALPHA_BETA_GY,
    STEP_GY,
    LatestSamples,
    eqd2_representation,
    read_latest_samples,
    sample_stored,
    stack_samples,
)
from etl.store.metric_reads import prescriptions
from omop.ingest_tables import IngestDataset

__all__ = ["band_curves", "episodes_of", "scheme_label"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_Curve = TypeVar("_Curve", LatestCurve, LatestSamples)


def scheme_label(total_gy: float | None, fractions: int | None) -> str:
    """Return ``"60 Gy/30"`` (``"unknown"`` without a prescription)."""
    if total_gy is None or not fractions:
        return "unknown"
    return f"{total_gy:g} Gy/{fractions}"


def episodes_of(persons: Select[Any]) -> Select[Any]:
    """Select the RT courses of the loaded datasets of ``persons``."""
    return select(IngestDataset.episode_id).where(
        IngestDataset.person_id.in_(persons), IngestDataset.episode_id.is_not(None)
    )


_Sampled = tuple[FloatArray, FloatArray, IntArray]


def _chosen(
    session: Session,
    persons: Select[Any],
    latest: Sequence[_Curve],
    scheme: str | None,
    eqd2: bool,
) -> list[tuple[_Curve, int]]:
    """Keep the curves of the scheme (with fractions for EQD2), with their fractions."""
    needed = latest and (eqd2 or scheme is not None)  # the course's fractions
    plan = prescriptions(session, episodes_of(persons)) if needed else {}
    out = []
    for row in latest:
        total, n = plan.get(row.episode_id or -1, (None, None))
        if scheme is not None and scheme_label(total, n) != scheme:
            continue
        if eqd2 and not n:
            continue
        out.append((row, int(n or 0)))
    return out


def _stored_samples(
    session: Session,
    persons: Select[Any],
    structure: str,
    *,
    scheme: str | None,
    eqd2: bool,
) -> _Sampled:
    """Grid, samples and centre of the kept curves, from the stored samples."""
    representation = eqd2_representation(SAMPLED_ALPHA_BETA_GY) if eqd2 else PHYSICAL
    latest = read_latest_samples(session, persons=persons, structure=structure,
                                 representation=representation)  # fmt: skip
    chosen = _chosen(session, persons, latest, scheme, eqd2)
    blobs = [r.samples if r.samples is not None and (not eqd2 or r.fractions == n)
             else None for r, n in chosen]  # fmt: skip
    missing = [i for i, b in enumerate(blobs) if b is None]
    if missing:  # stored before the summary, or the prescription changed since
        redone = sample_stored(
            session,
            [chosen[i][0].dvh_id for i in missing],
            [chosen[i][1] for i in missing] if eqd2 else None,
        )
        for i, b in zip(missing, redone, strict=True):
            blobs[i] = b
    sampled = stack_samples([b for b in blobs if b])
    grid = np.arange(sampled.shape[1], dtype=np.float64) * STEP_GY
    centres = np.array(
        [
            int(r.care_site_id or 0)
            for (r, _), b in zip(chosen, blobs, strict=True)
            if b
        ],
        dtype=np.int64,
    )
    return grid, sampled, centres


def _read_time_samples(
    session: Session,
    persons: Select[Any],
    structure: str,
    *,
    scheme: str | None,
    eqd2: bool,
    alpha_beta_gy: float,
    step_gy: float,
) -> _Sampled:
    """Grid, samples and centre of the kept curves, each curve sampled here."""
    latest = read_latest_curves(session, persons=persons, structure=structure)
    chosen = _chosen(session, persons, latest, scheme, eqd2)
    grid, sampled, kept = sample_cumulative(
        [dvh_from_row(r) for r, _ in chosen], step_gy,
        fractions=[float(n) for _, n in chosen] if eqd2 else None,
        alpha_beta_gy=alpha_beta_gy,
    )  # fmt: skip
    sites = [int(r.care_site_id or 0) for r, _ in chosen]
    return grid, sampled, np.array(sites, dtype=np.int64)[kept]


def band_curves(
    session: Session,
    persons: Select[Any],
    structure: str,
    *,
    scheme: str | None,
    eqd2: bool,
    alpha_beta_gy: float,
    step_gy: float,
) -> _Sampled:
    """Sample the band's curves: each patient's latest curve of ``structure``.

    Returns
    -------
    grid : ndarray, shape (k,)
        Doses (Gy), every ``step_gy`` from 0.
    samples : ndarray, shape (kept, k)
        Volume (%) receiving at least each dose, one row per curve with volume
        inside its dose grid.
    centres : ndarray, shape (kept,)
        The care site of each row's dataset (0 without).
    """
    if step_gy == STEP_GY and (not eqd2 or alpha_beta_gy == SAMPLED_ALPHA_BETA_GY):
        return _stored_samples(session, persons, structure, scheme=scheme, eqd2=eqd2)
    return _read_time_samples(
        session, persons, structure, scheme=scheme, eqd2=eqd2,
        alpha_beta_gy=alpha_beta_gy, step_gy=step_gy,
    )  # fmt: skip
