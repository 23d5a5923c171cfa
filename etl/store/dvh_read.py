"""The reader of stored DVHs (the ``dvh`` rows of :mod:`etl.store.dvh_rows`)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from omop.cdm import Episode, Person
from omop.ingest_tables import Dvh, IngestDataset
from omop.vocab.standard import RT_COURSE_EPISODE

__all__ = [
    "LatestCurve",
    "LoadedDvh",
    "first_per_person",
    "latest_first",
    "read_dvh_rows",
    "read_latest_curves",
]

_Row = TypeVar("_Row")


class LoadedDvh(NamedTuple):
    """A stored DVH row with its dataset, the patient's pseudonym and RT course."""

    dvh: Dvh
    dataset: IngestDataset
    pseudonym: str | None
    course_start: datetime.date | None  # None: the dataset has no RT course episode
    course_episode_id: int | None


def read_dvh_rows(
    session: Session,
    *,
    person_filter: Callable[[ColumnElement[int]], ColumnElement[bool]] | None = None,
    persons: Select[Any] | None = None,
    centres: Sequence[str] = (),
    structures: Sequence[str] = (),
) -> list[LoadedDvh]:
    """Return stored DVHs, ordered by pseudonym, course, dataset and ROI number.

    Parameters
    ----------
    person_filter
        Turns the person id column into a condition (the permission layer's filter).
    persons
        A SQL selection of person ids to keep.
    centres
        Centre codes of the datasets to keep (any case).
    structures
        TG-263 names to keep.
    """
    query = (
        select(
            Dvh,
            IngestDataset,
            Person.person_source_value,
            Episode.episode_start_date,
            Episode.episode_id,
        )
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .join(Person, Person.person_id == Dvh.person_id)
        .outerjoin(
            Episode,
            (Episode.episode_id == IngestDataset.episode_id)
            & (Episode.episode_concept_id == RT_COURSE_EPISODE),
        )
    )
    if person_filter is not None:
        query = query.where(person_filter(Dvh.person_id))  # type: ignore[arg-type]
    if persons is not None:
        query = query.where(Dvh.person_id.in_(persons))
    if centres:
        query = query.where(IngestDataset.centre.in_([c.upper() for c in centres]))
    if structures:
        query = query.where(Dvh.tg263_name.in_(list(structures)))
    query = query.order_by(
        Person.person_source_value,
        IngestDataset.episode_id,
        Dvh.dataset_id,
        Dvh.roi_number,
    )
    return [LoadedDvh(*row) for row in session.execute(query).all()]


class LatestCurve(NamedTuple):
    """The curve of one structure in a patient's latest dataset (a narrow read)."""

    person_id: int
    dataset_id: int
    care_site_id: int | None
    episode_id: int | None
    volume_cc: float
    outside_grid_cc: float
    min_gy: float | None
    mean_gy: float | None
    max_gy: float | None
    bin_width_gy: float
    differential_cc: bytes


def latest_first(*columns: Any, persons: Select[Any], structure: str) -> Select[Any]:
    """Select ``columns`` of the ``dvh`` rows of ``structure``, latest dataset first.

    Joined to the rows' ``ingest_dataset``; ordered by person, then dataset id
    descending, then ROI number: a person's first row is the structure in the
    person's latest dataset (:func:`first_per_person` keeps it). The first column
    must be the person id.
    """
    return (
        select(*columns)
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .where(Dvh.person_id.in_(persons), Dvh.tg263_name == structure)
        .order_by(Dvh.person_id, Dvh.dataset_id.desc(), Dvh.roi_number)
    )


def first_per_person(
    rows: Iterable[Sequence[Any]], make: Callable[..., _Row]
) -> list[_Row]:
    """Return ``make(*row)`` of each person's first row (of :func:`latest_first`)."""
    latest: dict[int, _Row] = {}
    for row in rows:
        if row[0] not in latest:
            latest[row[0]] = make(*row)
    return list(latest.values())


def read_latest_curves(
    session: Session, *, persons: Select[Any], structure: str
) -> list[LatestCurve]:
    """Return the stored DVH of ``structure`` in each person's latest dataset.

    Latest: the highest dataset id among the person's datasets holding the structure;
    of two ROIs with the same TG-263 name in it, the lower ROI number (as
    :func:`read_dvh_rows` orders them). Only the columns of the curve are read (no
    ORM objects), for the benchmark's population DVH band.
    """
    query = latest_first(
        Dvh.person_id, Dvh.dataset_id, IngestDataset.care_site_id,
        IngestDataset.episode_id, Dvh.volume_cc, Dvh.outside_grid_cc,
        Dvh.min_gy, Dvh.mean_gy, Dvh.max_gy, Dvh.bin_width_gy,
        Dvh.differential_cc, persons=persons, structure=structure,
    )  # fmt: skip
    return first_per_person(session.execute(query).all(), LatestCurve)
