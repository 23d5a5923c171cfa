"""The sampled cumulative DVHs of stored curves (summary table ``dvh_sampled``).

Every ``dvh`` row gets its cumulative curve sampled every :data:`STEP_GY` in physical
dose and, when the course's fractions are known, in EQD2 at alpha/beta
:data:`SAMPLED_ALPHA_BETA_GY` (:class:`omop.summary_tables.DvhSampled`), computed by
:func:`etl.dose.dvh_sample.sample_each` -- the values
:func:`~etl.dose.dvh_sample.sample_cumulative` gives at read time. :func:`sampled_rows`
builds them for both DVH writers (:func:`etl.store.load.load_dataset` through
:func:`write_dvh_samples`, and the simulator's bulk loader);
:func:`delete_dvh_samples` removes them with their ``dvh`` rows;
:func:`read_latest_samples` reads them for the population DVH band.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Select, and_, delete, select
from sqlalchemy.orm import Session

from etl.dose.dvh import DVH
from etl.dose.dvh_sample import sample_cumulative, sample_each
from etl.store.dvh_read import first_per_person, latest_first
from etl.store.dvh_rows import dvh_from_row
from omop.bulk import bulk_insert
from omop.ingest_tables import Dvh, IngestDataset
from omop.summary_tables import DvhSampled

__all__ = [
    "PHYSICAL",
    "SAMPLED_ALPHA_BETA_GY",
    "STEP_GY",
    "LatestSamples",
    "delete_dvh_samples",
    "eqd2_representation",
    "read_latest_samples",
    "sample_stored",
    "sampled_rows",
    "stack_samples",
    "write_dvh_samples",
]

#: Spacing (Gy) of the stored samples: the band's default step.
STEP_GY = 1.0
#: Alpha/beta (Gy) of the stored EQD2 samples: the band's default.
SAMPLED_ALPHA_BETA_GY = 3.0
PHYSICAL = "physical"


def eqd2_representation(alpha_beta_gy: float) -> str:
    """Return the ``representation`` of EQD2 samples (``eqd2_ab3``)."""
    return f"eqd2_ab{alpha_beta_gy:g}"


def _rows(
    curves: Sequence[tuple[int, int, DVH]],
    representation: str,
    fractions: int | None,
) -> list[dict[str, Any]]:
    dvhs = [c[2] for c in curves]
    each = sample_each(
        dvhs, STEP_GY, alpha_beta_gy=SAMPLED_ALPHA_BETA_GY,
        fractions=None if fractions is None else [float(fractions)] * len(dvhs),
    )  # fmt: skip
    return [
        {"dvh_id": dvh_id, "representation": representation, "step_gy": STEP_GY,
         "person_id": person_id, "fractions": fractions, "n_samples": len(values),
         "samples": np.asarray(values, dtype="<f8").tobytes()}
        for (dvh_id, person_id, _), values in zip(curves, each, strict=True)
        if values is not None
    ]  # fmt: skip


def sampled_rows(
    curves: Sequence[tuple[int, int, DVH]], fractions: int | None
) -> list[dict[str, Any]]:
    """Build the ``dvh_sampled`` rows of one course's stored DVHs.

    Parameters
    ----------
    curves
        ``(dvh_id, person_id, physical DVH)`` of the ``dvh`` rows.
    fractions
        The course's fractions (None or 0: no EQD2 rows).

    Returns
    -------
    list of dict
        One physical row per curve and one EQD2 row per curve with fractions (none
        for a curve whose EQD2 maximum is implausible: the band samples it at read
        time and reports the error as before).
    """
    rows = _rows(curves, PHYSICAL, None)
    if fractions:
        rows += _rows(
            curves, eqd2_representation(SAMPLED_ALPHA_BETA_GY), int(fractions)
        )
    return rows


def write_dvh_samples(
    session: Session, stored: Sequence[tuple[Dvh, DVH]], fractions: int | None
) -> int:
    """Write the ``dvh_sampled`` rows of flushed ``dvh`` rows; return how many."""
    rows = sampled_rows(
        [(int(row.dvh_id), int(row.person_id), dvh) for row, dvh in stored], fractions
    )
    return bulk_insert(session, DvhSampled, rows)


def sample_stored(
    session: Session, dvh_ids: Sequence[int], fractions: Sequence[int] | None
) -> list[bytes]:
    """Sample stored DVHs at read time, as :func:`sampled_rows` stores them.

    For curves without a usable summary row (``fractions``: EQD2 with these
    fractions, one per curve). Returns the samples as stored (empty: not kept).

    Raises
    ------
    etl.errors.DoseGridError
        When an EQD2 maximum needs an implausible number of bins.
    """
    ids = list(dvh_ids)
    by_id: dict[int, DVH] = {}
    for start in range(0, len(ids), 1000):
        query = select(
            Dvh.dvh_id, Dvh.volume_cc, Dvh.outside_grid_cc, Dvh.min_gy, Dvh.mean_gy,
            Dvh.max_gy, Dvh.bin_width_gy, Dvh.differential_cc,
        ).where(Dvh.dvh_id.in_(ids[start : start + 1000]))  # fmt: skip
        for row in session.execute(query).all():
            by_id[int(row.dvh_id)] = dvh_from_row(row)
    dvhs = [by_id[i] for i in ids]
    n = None if fractions is None else [float(f) for f in fractions]
    each = sample_each(dvhs, STEP_GY, fractions=n, alpha_beta_gy=SAMPLED_ALPHA_BETA_GY)
    if any(values is None for values in each):  # raise the error the band reports
        sample_cumulative(dvhs, STEP_GY, fractions=n,
                          alpha_beta_gy=SAMPLED_ALPHA_BETA_GY)  # fmt: skip
    return [np.asarray(v, dtype="<f8").tobytes() for v in each]


def delete_dvh_samples(session: Session, dvh_ids: Sequence[int]) -> None:
    """Delete the ``dvh_sampled`` rows of ``dvh`` rows about to be deleted."""
    ids = list(dvh_ids)
    for start in range(0, len(ids), 1000):
        session.execute(
            delete(DvhSampled).where(DvhSampled.dvh_id.in_(ids[start : start + 1000]))
        )


class LatestSamples(NamedTuple):
    """The sampled curve of one structure in a person's latest dataset.

    ``samples`` (little-endian float64, as stored) is None when the curve has no
    summary row of the representation (then ``dvh_id`` names the ``dvh`` row to
    sample at read time).
    """

    person_id: int
    dvh_id: int
    care_site_id: int | None
    episode_id: int | None
    fractions: int | None
    samples: bytes | None


def read_latest_samples(
    session: Session, *, persons: Select[Any], structure: str, representation: str
) -> list[LatestSamples]:
    """Return the samples of ``structure`` in each person's latest dataset.

    The curves are those of :func:`etl.store.dvh_read.read_latest_curves` (highest
    dataset id, then lowest ROI number), chosen in ``dvh`` by TG-263 name and person
    and joined to their ``representation`` samples at :data:`STEP_GY` by ``dvh_id``.
    """
    summary = and_(
        DvhSampled.dvh_id == Dvh.dvh_id,
        DvhSampled.representation == representation,
        DvhSampled.step_gy == STEP_GY,
    )
    query = latest_first(
        Dvh.person_id, Dvh.dvh_id, IngestDataset.care_site_id,
        IngestDataset.episode_id, DvhSampled.fractions, DvhSampled.samples,
        persons=persons, structure=structure,
    ).outerjoin(DvhSampled, summary)  # fmt: skip
    return first_per_person(session.execute(query).all(), LatestSamples)


def stack_samples(samples: Sequence[bytes]) -> NDArray[np.float64]:
    """Stack stored samples into one matrix, shorter rows continued with zeros.

    Returns
    -------
    ndarray, shape (len(samples), longest)
        One row per curve (at least one column).
    """
    sizes = np.array([len(b) // 8 for b in samples], dtype=np.int64)
    width = max(1, int(sizes.max())) if len(sizes) else 1
    out = np.zeros((len(samples), width))
    out[np.arange(width)[None, :] < sizes[:, None]] = np.frombuffer(
        b"".join(samples), dtype="<f8"
    )
    return out
