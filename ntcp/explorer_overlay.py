"""The predictors of a published logistic model for the explorer's patients.

A logistic model (:class:`ntcp.registry.PublishedModel`) may name several organs
(Christianen 2012: the superior constrictor and the supraglottic larynx). The fitted
organ's predictors come from the explorer's dataset; every other organ's from its own
extraction with the same selection and endpoint (:func:`ntcp.dataset.extract_dataset`:
as the same user, through the permission layer, audited as an ``ntcp dataset``),
matched by the project pseudonym. :func:`model_features` returns the predictor
columns and which of the explorer's patients have every organ.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from ntcp.cohort_csv import CohortTable
from ntcp.dataset import OmopDataset, extract_dataset
from ntcp.dose_metrics import dose_metric
from ntcp.registry import DoseKind, PublishedModel
from omop.cohort_tables import AppUser

__all__ = ["ModelFeatures", "model_features"]


@dataclass(frozen=True)
class ModelFeatures:
    """The predictor columns of the patients who have every organ of the model.

    Attributes
    ----------
    features
        One row per kept patient, one column per predictor.
    keep
        Per patient of the explorer's dataset: True when every organ is recorded.
    missing
        ``{organ: patients of the dataset without it}`` for the other organs.
    unrecorded
        The other organs no patient of the selection has (then nothing is kept).
    """

    features: pd.DataFrame
    keep: NDArray[np.bool_]
    missing: dict[str, int]
    unrecorded: tuple[str, ...]


def _metrics(model: PublishedModel, organ: str, table: CohortTable) -> pd.DataFrame:
    ab = model.alpha_beta_gy if model.dose is DoseKind.EQD2 else None
    dvhs = table.dvhs
    dose = dvhs.dose_matrix(ab)
    return pd.DataFrame(
        {q.name: dose_metric(dose, dvhs.volume_fraction, q.metric)
         for q in model.predictors if q.organ == organ},
        index=list(table.patient_ids),
    )  # fmt: skip


def model_features(
    session: Session | None,
    user: AppUser | str | None,
    model: PublishedModel,
    dataset: OmopDataset,
) -> ModelFeatures:
    """Return the predictors of ``model`` for the patients of ``dataset``.

    Parameters
    ----------
    session, user
        To extract the other organs (None: they count as not recorded).
    model
        A logistic model.
    dataset
        The explorer's dataset (its organ is ``dataset.spec.organ``).

    Raises
    ------
    NtcpError
        From an extraction, or EQD2 without fractions.
    PermissionDeniedError
        The user may no longer read the project.
    """
    organ = dataset.spec.organ
    ids = list(dataset.table.patient_ids)
    columns = [_metrics(model, organ, dataset.table)]
    keep = np.ones(len(ids), dtype=bool)
    missing: dict[str, int] = {}
    unrecorded: list[str] = []
    for other in sorted({q.organ for q in model.predictors} - {organ}):
        table = None
        if session is not None and user is not None:
            spec = dataclasses.replace(dataset.spec, organ=other)
            table = extract_dataset(session, user, spec).table
        if table is None or not table.patient_ids:
            unrecorded.append(other)
            keep[:] = False
            continue
        found = _metrics(model, other, table)
        has = np.isin(ids, list(found.index))
        missing[other] = int((~has).sum())
        keep &= has
        columns.append(found)
    kept = [i for i, k in zip(ids, keep, strict=True) if k]
    features = pd.concat([c.reindex(kept) for c in columns], axis=1)
    return ModelFeatures(features, keep, missing, tuple(unrecorded))
