"""The patients of a dataset and their organ DVH (one dose grid, rebinned).

The selection goes through the permission layer's :class:`cohort.permissions.Scope`;
each patient keeps the DVH of the organ, the RT course start and the fractions, or is
excluded with a reason (:class:`ntcp.dataset.spec.ExclusionReason`).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cohort.centres import get_centre
from cohort.consent import ConsentState, TreatmentSite
from cohort.permissions import Scope
from cohort.projects import get_project
from etl.dicom.enums import DoseSummationType
from etl.store.course import course_fractions
from etl.store.dvh_read import read_dvh_rows
from etl.store.dvh_rows import dvh_from_row
from ntcp.dataset.spec import DatasetSpec, Exclusion, ExclusionReason
from omop.cdm import Person
from omop.cohort_tables import Enrolment
from omop.ingest_tables import Dvh, IngestDataset

__all__ = [
    "COMPOSITE",
    "FloatArray",
    "Patient",
    "Row",
    "attach_dvhs",
    "dose_row",
    "fractions_by_course",
    "read_patients",
    "select_persons",
]


COMPOSITE = DoseSummationType.MULTI_PLAN


FloatArray = NDArray[np.float64]


@dataclass
class Patient:
    """A selected person: pseudonym, covariates, consent and organ DVHs."""

    person_id: int
    pseudonym: str
    year_of_birth: int | None
    gender_concept_id: int
    site: str | None
    consent: bool
    dvhs: list[tuple[Dvh, IngestDataset, datetime.date | None, int | None]] = field(
        default_factory=list
    )


@dataclass
class Row:
    """A patient with a usable DVH: course start, fractions, rebinned DVH."""

    patient: Patient
    start: datetime.date
    n_fractions: float
    dose_gy: FloatArray
    volume_fraction: FloatArray
    episode_id: int = 0
    age_years: int | None = None  # at the course start (etl.store.course_age)


def select_persons(
    session: Session, scope: Scope, spec: DatasetSpec, today: datetime.date | None
) -> Select[Any]:
    """Person ids visible to the user and matching project, centre and site."""
    query = select(Person.person_id).where(scope.person_filter(Person.person_id))
    if spec.project:
        project = get_project(session, spec.project)
        query = query.where(scope.project_filter(Person.person_id, project))
    if spec.centre:
        centre = get_centre(session, spec.centre)
        scope.require_centre_selection(centre)
        query = query.where(Person.care_site_id == centre.care_site_id)
    if spec.site is not None:
        query = query.where(
            Person.person_id.in_(
                select(Enrolment.person_id).where(
                    Enrolment.treatment_site == TreatmentSite(str(spec.site)).value
                )
            )
        )
    return query


def read_patients(session: Session, persons: Select[Any]) -> dict[int, Patient]:
    """Return the selected persons with their enrolment, by person id."""
    found: dict[int, Patient] = {}
    for pid, pseudo, yob, gender, site, scope_data, state in session.execute(
        select(
            Person.person_id,
            Person.person_source_value,
            Person.year_of_birth,
            Person.gender_concept_id,
            Enrolment.treatment_site,
            Enrolment.scope_data,
            Enrolment.state,
        )
        .outerjoin(Enrolment, Enrolment.person_id == Person.person_id)
        .where(Person.person_id.in_(persons))
    ):
        found[int(pid)] = Patient(
            int(pid),
            str(pseudo or f"person-{pid}"),
            yob,
            int(gender or 0),
            site,
            bool(scope_data) and state == ConsentState.CONSENTED.value,
        )
    return found


def attach_dvhs(
    session: Session,
    persons: Select[Any],
    organ: str,
    patients: dict[int, Patient],
) -> None:
    """Add the organ's DVH rows (with course start and episode) to each patient."""
    for row in read_dvh_rows(session, persons=persons, structures=[organ]):
        patients[row.dvh.person_id].dvhs.append(
            (row.dvh, row.dataset, row.course_start, row.course_episode_id)
        )


def fractions_by_course(
    session: Session, patients: Iterable[Patient]
) -> dict[int, int]:
    """Prescribed fractions per RT course (the ETL's prescription MEASUREMENT)."""
    return course_fractions(
        session, {e for p in patients for *_, e in p.dvhs if e is not None}
    )


def dose_row(
    p: Patient,
    spec: DatasetSpec,
    fractions: dict[int, int],
    exclusions: list[Exclusion],
) -> Row | None:
    """Return the dose row of a patient, or None after adding its exclusion."""

    def out(reason: ExclusionReason, detail: str = "") -> None:
        exclusions.append(Exclusion(p.pseudonym, reason, detail))

    if not p.consent:
        out(ExclusionReason.NO_DATA_CONSENT)
        return None
    if not p.dvhs:
        out(ExclusionReason.NO_ORGAN_DVH, f"no DVH of {spec.organ}")
        return None
    chosen = p.dvhs[0]
    if len(p.dvhs) > 1:
        composite = [d for d in p.dvhs if d[1].dose_summation_type == COMPOSITE]
        if len(composite) != 1:
            grids = len({d[1].dataset_id for d in p.dvhs})
            out(
                ExclusionReason.SEVERAL_DOSE_GRIDS,
                f"{len(p.dvhs)} DVHs of {spec.organ} in {grids} dose grid(s), "
                f"no single {COMPOSITE} composite",
            )
            return None
        chosen = composite[0]
    row, _, start, episode_id = chosen
    if start is None or episode_id is None:
        out(ExclusionReason.NO_RT_COURSE, "the dose grid has no RT course episode")
        return None
    dvh = dvh_from_row(row)
    inside = float(np.sum(dvh.differential_cc))
    if not inside > 0:
        out(ExclusionReason.EMPTY_DVH, "no volume inside the dose grid")
        return None
    outside = dvh.outside_grid_cc / dvh.volume_cc if dvh.volume_cc > 0 else 0.0
    if outside > spec.max_outside_grid_fraction:
        out(
            ExclusionReason.OUTSIDE_DOSE_GRID,
            f"{100 * outside:.1f}% of the organ outside the dose grid",
        )
        return None
    n_fx = fractions.get(episode_id)
    if spec.alpha_beta_gy is not None and n_fx is None:
        out(ExclusionReason.MISSING_FRACTIONS, "EQD2 asked, fractions unknown")
        return None
    dose, vol = _rebin(dvh.differential_cc, dvh.bin_width_gy, spec.bin_width_gy)
    n = float("nan") if n_fx is None else float(n_fx)
    return Row(p, start, n, dose, vol, episode_id)


def _rebin(
    diff_cc: FloatArray, width_gy: float, wanted_gy: float
) -> tuple[FloatArray, FloatArray]:
    """Merge bins by an integer factor; return bin-centre doses and volume fractions.

    Bins without volume are dropped (they do not change any DVH metric).
    """
    k = max(1, round(wanted_gy / width_gy))
    diff = np.asarray(diff_cc, dtype=float)
    if k > 1:
        pad = (-diff.size) % k
        diff = np.concatenate([diff, np.zeros(pad)]).reshape(-1, k).sum(axis=1)
    dose = (np.arange(diff.size) + 0.5) * (k * width_gy)
    keep = diff > 0
    frac = np.asarray(diff[keep] / diff.sum(), dtype=np.float64)
    return np.asarray(dose[keep], dtype=np.float64), frac
