"""Registry of published NTCP models, kept as data (``data/published_models.json``).

Each model records its form (``lkb`` or ``logistic``), parameters, the dose it applies
to (physical or per-bin EQD2 with an alpha/beta), the organ(s) by TG-263 name, the
endpoint and the citation. Each parameter names where its value came from
(``sources``: paper table/page or "unconfirmed"); a model is ``confirmed`` only when
every parameter was checked, and only confirmed models are offered as defaults
(:func:`default_models`); asking for an unconfirmed model by id works, with an
:class:`UnconfirmedModelWarning`. A model can be applied to a cohort and its calibration
compared with a refit on the same patients.
"""

from __future__ import annotations

import json
import warnings
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, model_validator
from scipy.special import expit, ndtr

from ntcp.errors import ModelSpecError, NtcpWarning, UnknownModelError
from ntcp.geud import DVHSet, geud_gy
from ntcp.lkb import LKBModel
from ntcp.validation import performance

__all__ = [
    "DOI_PATTERN",
    "DoseKind",
    "ModelForm",
    "ParameterSource",
    "Predictor",
    "PublishedModel",
    "UnconfirmedModelWarning",
    "compare_with_refit",
    "default_models",
    "get_model",
    "list_models",
]

#: A DOI (Crossref's recommended pattern for modern DOIs).
DOI_PATTERN = r"^10\.\d{4,9}/[-._;()/:A-Za-z0-9]+$"


class UnconfirmedModelWarning(NtcpWarning):
    """A published model whose parameters were not all checked against the paper."""


class ParameterSource(BaseModel):
    """Where one parameter value of a published model came from."""

    model_config = ConfigDict(frozen=True)
    source: str
    confirmed: bool


FloatArray = NDArray[np.float64]


class ModelForm(StrEnum):
    """Functional form of an NTCP model."""

    LKB = "lkb"
    LOGISTIC = "logistic"


class DoseKind(StrEnum):
    """Dose representation a model applies to."""

    PHYSICAL = "physical"
    EQD2 = "eqd2"


class Predictor(BaseModel):
    """One predictor of a published logistic model."""

    model_config = ConfigDict(frozen=True)
    name: str
    organ: str
    metric: str


class PublishedModel(BaseModel):
    """A published NTCP model."""

    model_config = ConfigDict(frozen=True)
    id: str
    form: ModelForm
    organ: list[str]
    endpoint: str
    endpoint_spec: str | None = None
    parameters: dict[str, Any]
    predictors: list[Predictor] = []
    dose: DoseKind
    alpha_beta_gy: float | None
    alpha_beta_source: str
    fraction_correction: str
    citation: str
    doi: str
    doi_confirmed: bool
    sources: dict[str, ParameterSource]
    confirmed: bool

    @model_validator(mode="after")
    def _check_provenance(self) -> PublishedModel:
        import re

        if not re.match(DOI_PATTERN, self.doi):
            raise ValueError(f"model {self.id}: {self.doi!r} is not a DOI")
        names = set(self.parameters) - {"coefficients"}
        names |= set(self.parameters.get("coefficients", {}))
        if names != set(self.sources):
            raise ValueError(
                f"model {self.id}: sources must name each parameter"
                f" ({sorted(names)}), not {sorted(self.sources)}"
            )
        if self.confirmed != all(s.confirmed for s in self.sources.values()):
            raise ValueError(
                f"model {self.id}: confirmed must be true exactly when every"
                " parameter source is confirmed"
            )
        return self

    def predict_ntcp(
        self, dvhs: DVHSet | None = None, features: pd.DataFrame | None = None
    ) -> FloatArray:
        """NTCP per patient: from DVHs (LKB) or from named predictor columns (logistic).

        Raises
        ------
        ModelSpecError
            If the needed input is missing.
        MissingFractionsError
            If the model applies to EQD2 and fractions are unknown.
        """
        if self.form is ModelForm.LKB:
            if dvhs is None:
                raise ModelSpecError(f"model {self.id} needs the organ DVHs")
            ab = self.alpha_beta_gy if self.dose is DoseKind.EQD2 else None
            dose = dvhs.dose_matrix(ab)
            p = self.parameters
            g = np.asarray(
                geud_gy(dose, dvhs.volume_fraction, float(p["n"])), dtype=float
            )
            t, m = float(p["td50_gy"]), float(p["m"])
            return np.asarray(ndtr((g - t) / (m * t)))
        if features is None:
            raise ModelSpecError(
                f"model {self.id} needs the columns "
                + ", ".join(pr.name for pr in self.predictors)
            )
        missing = [pr.name for pr in self.predictors if pr.name not in features.columns]
        if missing:
            raise ModelSpecError(
                f"model {self.id}: missing column(s) {', '.join(missing)}"
            )
        coef = self.parameters["coefficients"]
        eta = float(self.parameters["intercept"]) + sum(
            float(coef[pr.name]) * features[pr.name].to_numpy(dtype=float)
            for pr in self.predictors
        )
        return np.asarray(expit(np.asarray(eta, dtype=float)))


@cache
def _load() -> dict[str, PublishedModel]:
    text = (
        resources.files("ntcp")
        .joinpath("data/published_models.json")
        .read_text("utf-8")
    )
    data = json.loads(text)
    models = [PublishedModel.model_validate(m) for m in data["models"]]
    return {m.id: m for m in models}


def list_models() -> list[PublishedModel]:
    """All published models, in registry order (confirmed or not: see ``confirmed``)."""
    return list(_load().values())


def default_models(organ: str | None = None) -> list[PublishedModel]:
    """Return the models offered as defaults: confirmed only, optionally of one organ.

    Examples
    --------
    >>> all(m.confirmed for m in default_models())
    True
    """
    return [
        m
        for m in _load().values()
        if m.confirmed and (organ is None or organ in m.organ)
    ]


def get_model(model_id: str) -> PublishedModel:
    """Return the model with this identifier.

    An unconfirmed model is returned (the caller named it) with an
    :class:`UnconfirmedModelWarning` naming the parameters that were not checked.

    Raises
    ------
    UnknownModelError
        If no such model exists.

    Examples
    --------
    >>> get_model("christianen2012_dysphagia").parameters["intercept"]
    -6.09
    """
    try:
        model = _load()[model_id]
    except KeyError:
        raise UnknownModelError(
            f"no published model {model_id!r}; see `rtcohort ntcp models`"
        ) from None
    if not model.confirmed:
        unchecked = sorted(k for k, v in model.sources.items() if not v.confirmed)
        warnings.warn(
            f"published model {model_id}: {', '.join(unchecked)} not confirmed"
            " against the paper (see sources in the registry)",
            UnconfirmedModelWarning,
            stacklevel=2,
        )
    return model


def compare_with_refit(
    model: PublishedModel, dvhs: DVHSet, y: ArrayLike, refit_n: bool = False
) -> dict[str, dict[str, float]]:
    """Calibration of a published LKB model on a cohort next to an LKB refit.

    The refit uses the same dose representation; ``n`` is kept at the published value
    unless ``refit_n``.
    """
    if model.form is not ModelForm.LKB:
        raise ModelSpecError("refit comparison is implemented for LKB models")
    yy = np.asarray(y, dtype=float)
    published = performance(yy, model.predict_ntcp(dvhs))
    ab = model.alpha_beta_gy if model.dose is DoseKind.EQD2 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NtcpWarning)
        refit = LKBModel(
            fix_n=None if refit_n else float(model.parameters["n"]),
            alpha_beta_gy=ab,
            profile_ci=False,
        ).fit(dvhs, yy)
    refit_perf = performance(yy, refit.predict_ntcp(dvhs))
    refit_perf.update({"td50_gy": refit.td50_gy_, "m": refit.m_, "n": refit.n_})
    return {"published": published, "refit": refit_perf}
