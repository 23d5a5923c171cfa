"""Build an NTCP dataset from OMOP: :func:`extract_dataset` and :class:`OmopDataset`.

The steps are in :mod:`~ntcp.dataset.spec` (check), :mod:`~ntcp.dataset.selection`
(patients and DVHs) and :mod:`~ntcp.dataset.outcomes` (endpoints); this module joins
them into the cohort table, its snapshot hash and its CSV.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from cohort import audit
from cohort.patient_export import project_view
from cohort.permissions import Action, scope_for
from cohort.users import resolve_user
from etl.store.course_age import course_ages
from ntcp.cohort_csv import CohortTable
from ntcp.dataset.outcomes import ctcae_outcomes, qlq_outcomes
from ntcp.dataset.selection import (
    FloatArray,
    Row,
    attach_dvhs,
    dose_row,
    fractions_by_course,
    read_patients,
    select_persons,
)
from ntcp.dataset.spec import DatasetSpec, Exclusion, check_spec
from ntcp.endpoints import CtcaeEndpoint, Endpoint
from ntcp.geud import DVHSet
from ntcp.survival import CensorAt
from omop.cohort_tables import AppUser
from omop.vocab.standard import FEMALE, MALE

__all__ = [
    "OmopDataset",
    "extract_dataset",
]


@dataclass(frozen=True)
class OmopDataset:
    """An extracted dataset: the cohort table, exclusions and time to event.

    Attributes
    ----------
    table
        The cohort in the CSV path's form; ``sha256`` is the data snapshot hash
        (SHA-256 of a canonical binary form of the rows, see ``_digest``).
    exclusions
        Every selected patient not in ``table``, with the reason.
    time_to_event
        CTCAE endpoints: ``patient_id, duration_days, status`` (0 censored, 1
        toxicity, 2 death) of every patient with a usable DVH and follow-up,
        censored at the window; None for PROM endpoints.
    """

    spec: DatasetSpec
    endpoint: Endpoint
    table: CohortTable
    exclusions: tuple[Exclusion, ...]
    time_to_event: pd.DataFrame | None
    n_selected: int
    person_ids: frozenset[int] = field(repr=False, default=frozenset())

    def summary(self) -> dict[str, Any]:
        """Return counts for reports: selected, included, events, exclusions."""
        counts: dict[str, int] = {}
        for e in self.exclusions:
            counts[e.reason.value] = counts.get(e.reason.value, 0) + 1
        y = self.table.outcome
        spec = self.spec
        return {
            "source": "omop",
            "organ": spec.organ,
            "endpoint": str(self.endpoint),
            "project": spec.project,
            "centre": spec.centre,
            "site": None if spec.site is None else str(spec.site),
            "dose": "physical" if spec.alpha_beta_gy is None else "eqd2",
            "alpha_beta_gy": spec.alpha_beta_gy,
            "censor_at": CensorAt(spec.censor_at).value,
            "n_selected": self.n_selected,
            "n_included": len(self.table.patient_ids),
            "n_events": int(y.sum()) if y is not None else 0,
            "n_excluded": len(self.exclusions),
            "excluded": dict(sorted(counts.items())),
        }

    def to_csv(self) -> str:
        """Return the cohort as the CSV of ``ntcp fit --cohort`` (exact floats)."""
        return _csv_text(self.table.patient_ids, self.table)


def extract_dataset(
    session: Session,
    user: AppUser | str,
    spec: DatasetSpec,
    *,
    today: datetime.date | None = None,
) -> OmopDataset:
    """Extract an NTCP dataset from OMOP as ``user`` (filtered and audited).

    Parameters
    ----------
    session
        Open session; an audit record is added (the caller commits).
    user
        The acting account or its username (``RTCOHORT_USER`` in the CLI).
    spec
        Organ, endpoint, selection and options.
    today
        Date for project expiry (default: today, UTC).

    Returns
    -------
    OmopDataset
        Possibly with no patient (then every selected patient is in ``exclusions``).

    Raises
    ------
    PermissionDeniedError
        The user may not read patients, is not in ``project``, or may not select
        ``centre``.
    DatasetError
        Unknown CTCAE term, bad option.
    UnknownProjectError, UnknownCentreError
        For an unknown project or centre code.

    Examples
    --------
    >>> spec = DatasetSpec("Lungs", "ctcae:Pneumonitis>=2@365d", project="LUNG1")
    >>> ds = extract_dataset(session, "alice", spec)  # doctest: +SKIP
    >>> ds.summary()["n_included"]  # doctest: +SKIP
    412
    """
    actor = resolve_user(session, user)
    endpoint = spec.parsed_endpoint()
    check_spec(spec, endpoint)
    scope = scope_for(session, actor, Action.READ_PATIENTS, today=today).require()
    persons = select_persons(session, scope, spec, today)
    view = project_view(session, scope, spec.project, None)  # researcher, project
    patients = read_patients(session, persons)
    if view is not None:  # project pseudonyms: two projects' datasets do not link
        for p in patients.values():
            p.pseudonym = view.person(p.pseudonym)
    attach_dvhs(session, persons, spec.organ, patients)
    fractions = fractions_by_course(session, patients.values())
    exclusions: list[Exclusion] = []
    rows: list[Row] = []
    for p in sorted(patients.values(), key=lambda q: q.pseudonym):
        row = dose_row(p, spec, fractions, exclusions)
        if row is not None:
            rows.append(row)
    ages = course_ages(session, [r.episode_id for r in rows])
    for r in rows:
        r.age_years = ages.get(r.episode_id)
    ids = [r.patient.person_id for r in rows]
    tte: pd.DataFrame | None = None
    if isinstance(endpoint, CtcaeEndpoint):
        rows, outcome, tte = ctcae_outcomes(
            session, endpoint, spec, rows, ids, exclusions
        )
        baseline = None
    else:
        rows, outcome, baseline = qlq_outcomes(session, endpoint, rows, ids, exclusions)
    table = cohort_table(rows, outcome, baseline, spec)
    exclusions.sort(key=lambda e: e.patient_id)
    person_ids = frozenset(patients)
    detail = (
        f"organ {spec.organ}; endpoint {endpoint}"
        + (f"; project {spec.project}" if spec.project else "")
        + (f"; centre {spec.centre}" if spec.centre else "")
        + (f"; site {spec.site}" if spec.site else "")
        + f"; {len(rows)} included, {len(exclusions)} excluded"
    )
    audit.record(session, actor.username, "ntcp dataset", detail[:500], person_ids)
    return OmopDataset(
        spec, endpoint, table, tuple(exclusions), tte, len(patients), person_ids
    )


def cohort_table(
    rows: list[Row],
    outcome: list[int],
    baseline: list[float] | None,
    spec: DatasetSpec,
) -> CohortTable:
    ids = [r.patient.pseudonym for r in rows]
    if rows:
        dvhs = DVHSet.from_dvhs(
            [(r.dose_gy, r.volume_fraction) for r in rows],
            np.array([r.n_fractions for r in rows]),
        )
    else:
        dvhs = DVHSet(np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0))
    cov: dict[str, Any] = {
        "age_years": [
            float(r.age_years)
            if r.age_years is not None
            else float(r.start.year - r.patient.year_of_birth)
            if r.patient.year_of_birth
            else math.nan
            for r in rows
        ],
        "sex_male": [
            1.0
            if r.patient.gender_concept_id == MALE
            else 0.0
            if r.patient.gender_concept_id == FEMALE
            else math.nan
            for r in rows
        ],
        "site": [r.patient.site or "" for r in rows],
    }
    if baseline is not None:
        cov["baseline_score"] = baseline
    covariates = pd.DataFrame(cov)
    y = np.array(outcome, dtype=np.int64)
    pairs = [(r.dose_gy, r.volume_fraction) for r in rows]
    nfx = [r.n_fractions for r in rows]
    return CohortTable(
        ids, dvhs, y, covariates, _digest(ids, pairs, nfx, y, covariates)
    )


def _digest(
    ids: Sequence[str],
    pairs: Sequence[tuple[FloatArray, FloatArray]],
    nfx: Sequence[float],
    y: NDArray[np.int64],
    covariates: pd.DataFrame,
) -> str:
    """SHA-256 of the dataset's canonical binary form (the data snapshot hash).

    Per patient: pseudonym, fractions, outcome, the non-empty DVH bins (dose, volume
    fraction) as little-endian float64, then the covariate values; fields separated
    by unit separators so that no two datasets share a byte stream.
    """
    h = hashlib.sha256(b"rtcohort ntcp dataset v1\x1e")
    h.update("\x1f".join(map(str, covariates.columns)).encode() + b"\x1e")
    cov = covariates.astype(str).to_numpy()
    for i, pid in enumerate(ids):
        dose, vol = pairs[i]
        h.update(f"{pid}\x1f{nfx[i]!r}\x1f{int(y[i])}\x1f{dose.size}\x1f".encode())
        h.update(np.asarray(dose, dtype="<f8").tobytes())
        h.update(np.asarray(vol, dtype="<f8").tobytes())
        h.update(("\x1f" + "\x1f".join(cov[i].tolist()) + "\x1e").encode())
    return h.hexdigest()


def _num(value: float) -> str:
    return "" if not math.isfinite(value) else repr(float(value))


def _csv_lines(
    ids: Sequence[str],
    pairs: Sequence[tuple[FloatArray, FloatArray]],
    nfx: Sequence[float],
    y: NDArray[np.int64],
    covariates: pd.DataFrame,
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = list(covariates.columns)
    writer.writerow(["patient_id", "n_fractions", "dvh", "outcome", *names])
    for i, pid in enumerate(ids):
        dose, vol = pairs[i]
        dvh = "|".join(
            f"{d!r};{v!r}" for d, v in zip(dose.tolist(), vol.tolist(), strict=True)
        )
        fx = "" if not math.isfinite(nfx[i]) else str(int(nfx[i]))
        extra = [
            v if isinstance(v, str) else _num(float(v))
            for v in covariates.iloc[i].tolist()
        ]
        writer.writerow([pid, fx, dvh, str(int(y[i])), *extra])
    return buffer.getvalue()


def _csv_text(ids: Sequence[str], table: CohortTable) -> str:
    d = table.dvhs
    pairs = []
    for i in range(len(ids)):
        keep = d.volume_fraction[i] > 0
        pairs.append((d.dose_gy[i][keep], d.volume_fraction[i][keep]))
    y = table.outcome if table.outcome is not None else np.zeros(0, dtype=np.int64)
    return _csv_lines(ids, pairs, list(d.n_fractions), y, table.covariates)
