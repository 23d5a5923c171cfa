"""NTCP datasets from OMOP: organ DVH, fractions, endpoint, covariates, exclusions.

:func:`extract_dataset` reads, as the acting user and through the permission layer
(:func:`cohort.permissions.scope_for`, action ``read_patients``), the patients chosen
by project, centre and treatment site, and builds the same in-memory cohort as the CSV
path (:class:`ntcp.cohort_csv.CohortTable`): one row per patient with the pseudonym,
the number of fractions, the organ's differential DVH (physical dose at bin centres,
volume fractions) and the binary outcome, plus the covariates ``age_years`` (at the
start of the RT course, :func:`etl.store.course_age.course_ages`; else RT start year
minus year of birth), ``sex_male`` (1/0), ``site`` and, for
PROM endpoints, ``baseline_score``. Every patient left out is listed with a reason
(:class:`ExclusionReason`); the read is written to the audit trail.

Rules (see ``docs/ntcp.md``, "Datasets from OMOP"):

* Only persons whose enrolment consents to data use now are considered (read in the
  extraction's transaction: a withdrawn person is excluded at once).
* A dataset built for a project, or by a researcher, names patients by their project
  pseudonyms (:mod:`cohort.project_keys`), never by the stored, centre-prefixed ones.
* The DVH is the ``dvh`` row of the TG-263 ``organ`` (decoded with
  :func:`etl.store.dvh_rows.dvh_from_row`); a patient with the organ in several dose
  grids is
  excluded unless exactly one of them is a ``MULTI_PLAN`` composite. Bins are merged to
  ``bin_width_gy`` (default 0.1 Gy); the part of the organ outside the dose grid must be
  at most ``max_outside_grid_fraction`` of its volume (the rest is normalised to 1).
* Time zero is the start date of the RT course (EPISODE) of that dose grid;
  the number of fractions is the course's prescription MEASUREMENT.
* ``ctcae:TERMS>=G@Dd``: an event is a grading of one of the terms at grade >= G on
  days 0..D after the RT start. Without an event, a patient counts as 0 only if
  followed at least D days (last CTCAE assessment of any term, or the last contact
  with ``censor_at="last_contact"``); otherwise excluded (short follow-up; died
  within the window). A grade >= G of the terms before RT start (or at the
  ``baseline`` timepoint) excludes the patient. ``time_to_event`` holds days and
  status (0 censored, 1 toxicity, 2 death first) with censoring at D.
* ``qlqc30:SCALE-P@T``: outcome 1 when the score at timepoint ``T`` is at least P
  points worse than at ``baseline`` (a fall for functional scales and QL2, a rise for
  symptom scales); patients without both scores are excluded.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import NDArray
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cohort import audit
from cohort.centres import get_centre
from cohort.consent import ConsentState, TreatmentSite
from cohort.patient_export import project_view
from cohort.permissions import Action, Scope, scope_for
from cohort.projects import get_project
from cohort.users import resolve_user
from cohort.vital import vital_status
from etl.dicom.enums import DoseSummationType
from etl.store.course import course_fractions
from etl.store.course_age import course_ages
from etl.store.dvh_rows import dvh_from_row, read_dvh_rows
from instruments.ctcae import load_catalogue
from instruments.store import read_latest_scores, read_toxicity
from ntcp.cohort_csv import CohortTable
from ntcp.endpoints import CtcaeEndpoint, Endpoint, QlqC30Endpoint, parse_endpoint
from ntcp.errors import NtcpError
from ntcp.geud import DVHSet
from ntcp.survival import CensorAt, competing_risks_outcome
from omop.cdm import Person
from omop.cohort_tables import AppUser, Enrolment
from omop.ingest_tables import Dvh, IngestDataset
from omop.vocab.standard import FEMALE, MALE

__all__ = [
    "COVARIATES",
    "DatasetError",
    "DatasetSpec",
    "Exclusion",
    "ExclusionReason",
    "OmopDataset",
    "extract_dataset",
]

#: Numeric covariates a logistic model may use (``baseline_score``: PROM endpoints).
COVARIATES = ("age_years", "sex_male", "baseline_score")
_BASELINE = "baseline"
_COMPOSITE = DoseSummationType.MULTI_PLAN
_CHUNK = 2000
QLQ_C30 = "QLQ-C30"
FloatArray = NDArray[np.float64]


class DatasetError(NtcpError, ValueError):
    """A dataset specification cannot be extracted (organ, term, option)."""


class ExclusionReason(StrEnum):
    """Why a selected patient is not in the dataset (first failing check)."""

    NO_DATA_CONSENT = "no_data_consent"
    NO_ORGAN_DVH = "no_organ_dvh"
    SEVERAL_DOSE_GRIDS = "several_dose_grids"
    NO_RT_COURSE = "no_rt_course"
    EMPTY_DVH = "empty_dvh"
    OUTSIDE_DOSE_GRID = "organ_outside_dose_grid"
    MISSING_FRACTIONS = "missing_fractions"
    BASELINE_TOXICITY = "baseline_toxicity"
    DIED_IN_WINDOW = "died_in_window"
    SHORT_FOLLOWUP = "short_followup"
    NO_PROM_BASELINE = "no_prom_baseline"
    NO_PROM_AT_TIMEPOINT = "no_prom_at_timepoint"
    NO_PROM_EITHER = "no_prom_baseline_nor_timepoint"


@dataclass(frozen=True)
class Exclusion:
    """One excluded patient (pseudonym), the reason and a detail (no identifier)."""

    patient_id: str
    reason: ExclusionReason
    detail: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """What to extract.

    Attributes
    ----------
    organ
        TG-263 name of the organ at risk (exact, e.g. ``Lungs``).
    endpoint
        An endpoint or its text (:func:`ntcp.endpoints.parse_endpoint`).
    project, centre, site
        Selection: project code, centre code, treatment site (``lung``...).
    alpha_beta_gy
        When given, the dose representation is EQD2 (the model converts each bin with
        the patient's fractions): patients without fractions are excluded.
    censor_at
        Follow-up end of patients without an event (last assessment or contact).
    followup_slack_days
        A patient without an event counts as followed if followed ``D - slack`` days.
    exclude_baseline_toxicity
        Exclude patients with the toxicity at or above the grade before RT.
    bin_width_gy
        Bins are merged to (an integer multiple of the stored width near) this width.
    max_outside_grid_fraction
        Largest part of the organ volume allowed outside the dose grid.
    """

    organ: str
    endpoint: Endpoint | str
    project: str | None = None
    centre: str | None = None
    site: TreatmentSite | str | None = None
    alpha_beta_gy: float | None = None
    censor_at: CensorAt | str = CensorAt.LAST_ASSESSMENT
    followup_slack_days: int = 0
    exclude_baseline_toxicity: bool = True
    bin_width_gy: float = 0.1
    max_outside_grid_fraction: float = 0.01

    def parsed_endpoint(self) -> Endpoint:
        """Return the endpoint, parsed if given as text."""
        if isinstance(self.endpoint, str):
            return parse_endpoint(self.endpoint)
        return self.endpoint


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


@dataclass
class _Patient:
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
class _Row:
    patient: _Patient
    start: datetime.date
    n_fractions: float
    dose_gy: FloatArray
    volume_fraction: FloatArray
    episode_id: int = 0
    age_years: int | None = None  # at the course start (etl.store.course_age)


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
    _check_spec(spec, endpoint)
    scope = scope_for(session, actor, Action.READ_PATIENTS, today=today).require()
    persons = _selection(session, scope, spec, today)
    view = project_view(session, scope, spec.project, None)  # researcher, project
    patients = _patients(session, persons)
    if view is not None:  # project pseudonyms: two projects' datasets do not link
        for p in patients.values():
            p.pseudonym = view.person(p.pseudonym)
    _attach_dvhs(session, persons, spec.organ, patients)
    fractions = _fractions(session, patients.values())
    exclusions: list[Exclusion] = []
    rows: list[_Row] = []
    for p in sorted(patients.values(), key=lambda q: q.pseudonym):
        row = _dose_row(p, spec, fractions, exclusions)
        if row is not None:
            rows.append(row)
    ages = course_ages(session, [r.episode_id for r in rows])
    for r in rows:
        r.age_years = ages.get(r.episode_id)
    ids = [r.patient.person_id for r in rows]
    tte: pd.DataFrame | None = None
    if isinstance(endpoint, CtcaeEndpoint):
        rows, outcome, tte = _ctcae(session, endpoint, spec, rows, ids, exclusions)
        baseline = None
    else:
        rows, outcome, baseline = _qlq(session, endpoint, rows, ids, exclusions)
    table = _table(rows, outcome, baseline, spec)
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


def _check_spec(spec: DatasetSpec, endpoint: Endpoint) -> None:
    if not spec.organ.strip():
        raise DatasetError("organ: a TG-263 name is required (e.g. Lungs)")
    if spec.alpha_beta_gy is not None and not spec.alpha_beta_gy > 0:
        raise DatasetError(f"alpha/beta must be > 0 Gy, got {spec.alpha_beta_gy}")
    if not spec.bin_width_gy > 0:
        raise DatasetError(f"bin width must be > 0 Gy, got {spec.bin_width_gy}")
    if spec.site is not None:
        try:
            TreatmentSite(str(spec.site))
        except ValueError:
            allowed = "|".join(s.value for s in TreatmentSite)
            raise DatasetError(f"site {spec.site!r}: use {allowed}") from None
    CensorAt(spec.censor_at)
    if isinstance(endpoint, CtcaeEndpoint):
        catalogues = [load_catalogue("5.0"), load_catalogue("6.0")]
        unknown = [t for t in endpoint.terms if not any(t in c for c in catalogues)]
        if unknown:
            raise DatasetError(
                f"endpoint {endpoint}: unknown CTCAE term(s) {', '.join(unknown)}"
            )


def _selection(
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


def _patients(session: Session, persons: Select[Any]) -> dict[int, _Patient]:
    found: dict[int, _Patient] = {}
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
        found[int(pid)] = _Patient(
            int(pid),
            str(pseudo or f"person-{pid}"),
            yob,
            int(gender or 0),
            site,
            bool(scope_data) and state == ConsentState.CONSENTED.value,
        )
    return found


def _attach_dvhs(
    session: Session,
    persons: Select[Any],
    organ: str,
    patients: dict[int, _Patient],
) -> None:
    for row in read_dvh_rows(session, persons=persons, structures=[organ]):
        patients[row.dvh.person_id].dvhs.append(
            (row.dvh, row.dataset, row.course_start, row.course_episode_id)
        )


def _fractions(session: Session, patients: Iterable[_Patient]) -> dict[int, int]:
    """Prescribed fractions per RT course (the ETL's prescription MEASUREMENT)."""
    return course_fractions(
        session, {e for p in patients for *_, e in p.dvhs if e is not None}
    )


def _chunks(items: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


def _dose_row(
    p: _Patient,
    spec: DatasetSpec,
    fractions: dict[int, int],
    exclusions: list[Exclusion],
) -> _Row | None:
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
        composite = [d for d in p.dvhs if d[1].dose_summation_type == _COMPOSITE]
        if len(composite) != 1:
            grids = len({d[1].dataset_id for d in p.dvhs})
            out(
                ExclusionReason.SEVERAL_DOSE_GRIDS,
                f"{len(p.dvhs)} DVHs of {spec.organ} in {grids} dose grid(s), "
                f"no single {_COMPOSITE} composite",
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
    return _Row(p, start, n, dose, vol, episode_id)


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


def _tox_frame(session: Session, ids: Sequence[int]) -> pd.DataFrame:
    frames = [read_toxicity(session, chunk) for chunk in _chunks(sorted(ids))]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _ctcae(  # noqa: PLR0917
    session: Session,
    endpoint: CtcaeEndpoint,
    spec: DatasetSpec,
    rows: list[_Row],
    ids: Sequence[int],
    exclusions: list[Exclusion],
) -> tuple[list[_Row], list[int], pd.DataFrame]:
    tox = _tox_frame(session, ids)
    vital = vital_status(session, list(ids)) if ids else {}
    wanted = {t.casefold() for t in endpoint.terms}
    by_person: dict[int, list[tuple[datetime.date, str, int, str | None]]] = {}
    for pid, day, term, grade, tp in (
        tox[["person_id", "assessed_on", "term", "grade", "timepoint"]].itertuples(
            index=False
        )
        if len(tox)
        else []
    ):
        by_person.setdefault(int(pid), []).append((day, str(term), int(grade), tp))
    window = endpoint.window_days
    needed = window - spec.followup_slack_days
    use_contact = CensorAt(spec.censor_at) is CensorAt.LAST_CONTACT
    kept: list[_Row] = []
    outcome: list[int] = []
    tte: dict[str, list[Any]] = {"patient_id": [], "start": [], "event": []}
    tte.update({"death": [], "contact": [], "assessed": []})
    for r in rows:
        p, start = r.patient, r.start
        gradings = by_person.get(p.person_id, [])
        hits = sorted(
            d
            for d, term, g, tp in gradings
            if term.casefold() in wanted
            and g >= endpoint.min_grade
            and (d >= start and tp != _BASELINE)
        )
        before = [
            d
            for d, term, g, tp in gradings
            if term.casefold() in wanted
            and g >= endpoint.min_grade
            and (d < start or tp == _BASELINE)
        ]
        if before and spec.exclude_baseline_toxicity:
            exclusions.append(
                Exclusion(
                    p.pseudonym,
                    ExclusionReason.BASELINE_TOXICITY,
                    f"grade >= {endpoint.min_grade} before RT start",
                )
            )
            continue
        first = hits[0] if hits else None
        status = vital.get(p.person_id)
        death = status.death_date if status else None
        contact = status.last_contact_date if status else None
        later = [d for d, *_ in gradings if d >= start]
        assessed = max(later) if later else None
        contact = contact if contact is not None and contact >= start else None
        if death is not None and death < start:
            death = None
        if first is not None or death is not None or assessed or contact:
            tte["patient_id"].append(p.pseudonym)
            tte["start"].append(start)
            tte["event"].append(first)
            tte["death"].append(death)
            # Without a recorded contact, the last assessment is the last contact.
            tte["contact"].append(contact or assessed)
            tte["assessed"].append(assessed)
        if first is not None and (first - start).days <= window:
            kept.append(r)
            outcome.append(1)
            continue
        if death is not None and (death - start).days < needed:
            exclusions.append(
                Exclusion(
                    p.pseudonym,
                    ExclusionReason.DIED_IN_WINDOW,
                    f"died on day {(death - start).days} without the event",
                )
            )
            continue
        end = (contact or assessed) if use_contact else (assessed or contact)
        followed = (end - start).days if end is not None else None
        if followed is None or followed < needed:
            what = "no follow-up" if followed is None else f"followed {followed} days"
            exclusions.append(
                Exclusion(
                    p.pseudonym,
                    ExclusionReason.SHORT_FOLLOWUP,
                    f"{what} < {needed} without the event",
                )
            )
            continue
        kept.append(r)
        outcome.append(0)
    return kept, outcome, _tte_frame(tte, spec, window)


def _tte_frame(
    data: dict[str, list[Any]], spec: DatasetSpec, window: int
) -> pd.DataFrame:
    if not data["patient_id"]:
        return pd.DataFrame(columns=["patient_id", "duration_days", "status"])

    def iso(values: list[datetime.date | None]) -> pd.Series:
        return pd.Series([None if v is None else v.isoformat() for v in values])

    duration, status = competing_risks_outcome(
        iso(data["start"]),
        iso(data["event"]),
        iso(data["death"]),
        iso(data["contact"]),
        iso(data["assessed"]),
        censor_at=spec.censor_at,
        horizon_days=float(window),
    )
    return pd.DataFrame(
        {"patient_id": data["patient_id"], "duration_days": duration, "status": status}
    )


def _qlq(
    session: Session,
    endpoint: QlqC30Endpoint,
    rows: list[_Row],
    ids: Sequence[int],
    exclusions: list[Exclusion],
) -> tuple[list[_Row], list[int], list[float]]:
    latest = _scale_scores(session, ids, endpoint.scale)
    kept: list[_Row] = []
    outcome: list[int] = []
    baseline: list[float] = []
    for r in rows:
        pid = r.patient.person_id
        base = latest.get((pid, _BASELINE))
        follow = latest.get((pid, endpoint.timepoint))
        if base is None or follow is None:
            reason = (
                ExclusionReason.NO_PROM_EITHER
                if base is None and follow is None
                else ExclusionReason.NO_PROM_BASELINE
                if base is None
                else ExclusionReason.NO_PROM_AT_TIMEPOINT
            )
            exclusions.append(
                Exclusion(r.patient.pseudonym, reason, f"QLQ-C30 {endpoint.scale}")
            )
            continue
        kept.append(r)
        outcome.append(int(endpoint.is_deterioration(base, follow)))
        baseline.append(base)
    return kept, outcome, baseline


def _scale_scores(
    session: Session, ids: Sequence[int], scale: str
) -> dict[tuple[int, str], float]:
    """Score of one QLQ-C30 scale per (person, timepoint); the last completed wins."""
    code = "SUMMARY" if scale == "SUMSC" else scale
    return read_latest_scores(session, ids, code, instrument=QLQ_C30)


def _table(
    rows: list[_Row],
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
