"""The national cohort: patients of centres with their own practice, with known truth.

:func:`simulate_national` draws, from one seed, the centres' practice
(:mod:`cohort.simulate.practice`) and their patients: demographics by site, a schedule
from the centre's preferences, laterality, an RT start spread over ``years`` (ending at
:data:`DATA_CUT`), consent (the centre's recruitment rate), withdrawal, death (hazard by
site and age), the plan and its DVHs (:mod:`cohort.simulate.dose`, consented patients
only: the others have no clinical rows), toxicity per LKB truth endpoint and QLQ-C30
questionnaires (:mod:`cohort.simulate.outcomes`) at the timepoints before the data cut,
death and withdrawal. Every patient has its own random stream
(``default_rng([seed, centre, patient])``), so a patient is the same whatever else is
simulated, and patients can be simulated in any order or in parallel.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cohort.simulate.dose import StructureDose, patient_dose, patient_spec
from cohort.simulate.outcomes import (
    ENDPOINTS,
    PROM_TIMEPOINTS,
    completes,
    draw_grades,
    eqd2_geud_gy,
    lkb_probability,
    prom_burden,
    qlq_c30_answers,
    timepoint_date,
)
from cohort.simulate.params import Schedule, SimulationParams
from cohort.simulate.practice import (
    CentrePractice,
    draw_practices,
    local_name,
    name_variant,
)
from cohort.simulate.stage import draw_stage
from etl.phantom.spec import PhantomSpec

__all__ = ["DATA_CUT", "NationalCohort", "NationalPatient", "simulate_national"]

#: The data cut: RT starts end before it; no assessment after it.
DATA_CUT = datetime.date(2025, 12, 31)

_AGE = {"breast": (58, 11), "prostate": (70, 7), "lung": (68, 9), "head_neck": (62, 9)}
_MALE = {"breast": 0.01, "prostate": 1.0, "lung": 0.55, "head_neck": 0.75}
_DEATH_PER_YEAR = {"breast": 0.02, "prostate": 0.03, "lung": 0.30, "head_neck": 0.10}
_WITHDRAWAL = 0.04
_VARIANT = 0.08
_TG263 = {
    "breast": ("BODY", "Lung_L", "Lung_R", "Heart", "A_LAD", "Breast_L", "Breast_R",
               "CTV", "PTV"),
    "prostate": ("BODY", "PTV", "Rectum", "Bladder", "Femur_Head_L", "Femur_Head_R"),
    "head_neck": ("BODY", "PTV_High", "PTV_Low", "Parotid_L", "Parotid_R",
                  "Glnd_Submand_L", "Glnd_Submand_R", "SpinalCord", "Larynx",
                  "Musc_Constrict"),
    "lung": ("BODY", "Lung_L", "Lung_R", "Heart", "Esophagus", "SpinalCord", "PTV",
             "Lungs"),
}  # fmt: skip
# Structures added later: their names draw from a stream of their own, so the
# patients of a seed are the same as before apart from them.
_TG263_ADDED = {
    "breast": ("Esophagus", "SpinalCord", "Glnd_Thyroid", "Humerus_L", "Humerus_R",
               "Lungs"),
    "prostate": ("CTV", "SeminalVes", "Canal_Anal", "PenileBulb", "Bowel_Small",
                 "Colon_Sigmoid", "Urethra"),
    "head_neck": ("Brainstem", "Cavity_Oral", "Larynx_SG", "Musc_Constrict_S",
                  "Musc_Constrict_M", "Musc_Constrict_I"),
    "lung": ("Trachea", "Bronchus", "BrachialPlex_L", "BrachialPlex_R", "GTV", "CTV"),
}  # fmt: skip


@dataclass
class NationalPatient:
    """One simulated patient (truth and what a centre would record)."""

    centre: str
    index: int
    hospital_id: str
    year_of_birth: int
    sex: str
    site: str
    laterality: str
    schedule: Schedule
    rt_start: datetime.date
    rt_end: datetime.date
    consented: bool
    consent_date: datetime.date
    sparing: float
    local_names: dict[str, str]  # TG-263 -> local
    withdrawn_on: datetime.date | None = None
    died_on: datetime.date | None = None
    stage: str | None = None  # overall stage as recorded (cohort.simulate.stage)
    structures: list[StructureDose] = field(default_factory=list)
    geud_gy: dict[str, float] = field(default_factory=dict)
    ntcp: dict[str, float] = field(default_factory=dict)
    peak_grade: dict[str, int] = field(default_factory=dict)
    grades: dict[str, dict[str, int]] = field(default_factory=dict)
    proms: dict[str, dict[int, int]] = field(default_factory=dict)
    prom_timepoints_due: list[str] = field(default_factory=list)
    seed: tuple[int, ...] = ()

    @property
    def proms_due(self) -> int:
        """Questionnaires due (timepoints before the data cut, death, withdrawal)."""
        return len(self.prom_timepoints_due)

    @property
    def last_contact(self) -> datetime.date:
        """The last day the centre saw the patient alive."""
        ends = [DATA_CUT, self.died_on, self.withdrawn_on]
        return min(d for d in ends if d is not None)

    def spec(self, truth_samples: int = 32_768) -> PhantomSpec:
        """Return the patient's phantom (the same on every call)."""
        return patient_spec(
            self.site,
            prescription_gy=self.schedule.dose_gy,
            fractions=self.schedule.fractions,
            laterality=self.laterality,
            sparing=self.sparing,
            names=self.local_names,
            rng=np.random.default_rng([*self.seed, 1]),
            truth_samples=truth_samples,
        )

    def summary(self) -> dict[str, Any]:
        """Return the patient's truth as JSON-ready data."""
        return {
            "hospital_id": self.hospital_id, "centre": self.centre, "site": self.site,
            "laterality": self.laterality, "schedule": self.schedule.label,
            "consented": self.consented, "stage": self.stage,
            "withdrawn_on": self.withdrawn_on and self.withdrawn_on.isoformat(),
            "died_on": self.died_on and self.died_on.isoformat(),
            "geud_gy": self.geud_gy, "ntcp": self.ntcp, "peak_grade": self.peak_grade,
            "proms_due": self.proms_due, "proms_completed": len(self.proms),
        }  # fmt: skip


@dataclass
class NationalCohort:
    """The simulated cohort and its truth."""

    params: SimulationParams
    practices: list[CentrePractice]
    patients: list[NationalPatient]

    @property
    def outlier_centre(self) -> str | None:
        """The centre with the toxicity excess (None with fewer than 3 centres)."""
        return next(
            (p.code for p in self.practices if p.toxicity_odds_ratio != 1.0), None
        )

    def truth(self) -> dict[str, Any]:
        """Return the truth as JSON-ready data (``--truth FILE``)."""
        p = self.params
        return {
            "format": "rtcohort-simulation-truth/1",
            "params": {
                "centres": p.centres, "patients_per_centre": p.patients,
                "years": p.years, "seed": p.seed, "recruitment": p.recruitment,
                "completion": p.completion, "sites": list(p.sites),
                "schedules": {s: [x.label for x in v] for s, v in p.schedules.items()},
                "outlier_odds_ratio": p.outlier_odds_ratio,
            },
            "data_cut": DATA_CUT.isoformat(),
            "outlier_centre": self.outlier_centre,
            "endpoints": [e.as_dict() for e in ENDPOINTS if e.site in p.sites],
            "centres": [c.as_dict() for c in self.practices],
            "naming": _naming(self.patients),
            "patients": [x.summary() for x in self.patients],
        }  # fmt: skip


def _naming(patients: list[NationalPatient]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for p in patients:
        for tg, local in p.local_names.items():
            out.setdefault(p.centre, {})[local] = tg
    return out


def _names(
    site: str,
    practice: CentrePractice,
    rng: np.random.Generator,
    seed: tuple[int, ...],
) -> dict[str, str]:
    names: dict[str, str] = {}
    added = np.random.default_rng([*seed, 3])
    for tg, stream in [(t, rng) for t in _TG263[site]] + [
        (t, added) for t in _TG263_ADDED[site]
    ]:
        local = local_name(tg, practice.naming)
        if stream.random() < _VARIANT and not tg.startswith(("PTV", "CTV", "GTV")):
            variant = name_variant(local, stream)
            if variant not in names.values():
                local = variant
        names[tg] = local
    return names


def _rt_end(start: datetime.date, fractions: int) -> datetime.date:
    # Five fractions a week, Monday to Friday; starts are on Mondays.
    weeks, extra = divmod(fractions - 1, 5)
    return start + datetime.timedelta(days=7 * weeks + extra)


def _draw_patient(
    params: SimulationParams, practice: CentrePractice, c: int, i: int
) -> NationalPatient:
    seed = (params.seed, c, i)
    rng = np.random.default_rng(list(seed))
    sites = list(practice.case_mix)
    site = sites[int(rng.choice(len(sites), p=list(practice.case_mix.values())))]
    schedules = params.schedules[site]
    schedule = schedules[
        int(rng.choice(len(schedules), p=list(practice.schedule_weights[site])))
    ]
    span = max(1, int(params.years * 365.25) - 14)
    start = DATA_CUT - datetime.timedelta(days=14 + int(rng.integers(0, span)))
    start -= datetime.timedelta(days=start.weekday())
    mean_age, sd_age = _AGE[site]
    age = int(np.clip(rng.normal(mean_age, sd_age), 25, 92))
    consented = bool(rng.random() < practice.recruitment)
    patient = NationalPatient(
        centre=practice.code, index=i, hospital_id=f"{practice.code}-{i + 1:06d}",
        year_of_birth=start.year - age, sex="M" if rng.random() < _MALE[site] else "F",
        site=site, laterality="L" if rng.random() < 0.5 else "R",  # noqa: PLR2004
        schedule=schedule, rt_start=start, rt_end=_rt_end(start, schedule.fractions),
        consented=consented, consent_date=start - datetime.timedelta(days=14),
        sparing=practice.sparing, local_names=_names(site, practice, rng, seed),
        seed=seed,
    )  # fmt: skip
    patient.stage = draw_stage(site, seed, schedule.fractions)
    hazard = _DEATH_PER_YEAR[site] * np.exp(0.04 * (age - mean_age))
    died = start + datetime.timedelta(days=int(rng.exponential(365.25 / hazard)))
    patient.died_on = died if died <= DATA_CUT else None
    if consented and rng.random() < _WITHDRAWAL:
        last = (patient.died_on or DATA_CUT) - start
        patient.withdrawn_on = start + datetime.timedelta(
            days=int(rng.integers(0, max(1, last.days)))
        )
    return patient


def _outcomes(
    patient: NationalPatient,
    practice: CentrePractice,
    samples: int,
) -> None:
    rng = np.random.default_rng([*patient.seed, 2])
    spec = patient.spec()
    tg_of = {local: tg for tg, local in patient.local_names.items()}
    patient.structures = patient_dose(spec, tg_of, samples=samples, seed=patient.index)
    by_tg = {s.tg263: s for s in patient.structures}
    fx = patient.schedule.fractions
    toxic_at: set[str] = set()
    for ep in (e for e in ENDPOINTS if e.site == patient.site):
        dose, frac = by_tg[ep.organ_for(patient.laterality)].bins()
        geud = eqd2_geud_gy(dose, frac, fx, ep.alpha_beta_gy, ep.n)
        p = lkb_probability(geud, ep.td50_gy, ep.m, practice.toxicity_odds_ratio)
        grades = draw_grades(rng, p, ep.peak)
        patient.geud_gy[ep.term], patient.ntcp[ep.term] = geud, p
        patient.peak_grade[ep.term] = max(grades.values())
        seen = {
            tp: g
            for tp, g in grades.items()
            if timepoint_date(patient.rt_start, patient.rt_end, tp)
            < patient.last_contact
        }
        patient.grades[ep.term] = seen
        toxic_at |= {tp for tp, g in grades.items() if g >= 2}  # noqa: PLR2004
    baseline = float(np.clip(rng.normal(0.15, 0.08), 0.0, 0.6))
    for tp in PROM_TIMEPOINTS:
        if timepoint_date(patient.rt_start, patient.rt_end, tp) >= patient.last_contact:
            break
        patient.prom_timepoints_due.append(tp)
        burden = prom_burden(baseline, tp, patient.site, tp in toxic_at)
        if completes(rng, practice.completion, burden):
            patient.proms[tp] = qlq_c30_answers(rng, burden)


def simulate_national(
    params: SimulationParams,
    *,
    samples: int = 4096,
    progress: Callable[[int, int], None] | None = None,
    only_centres: Collection[str] | None = None,
) -> NationalCohort:
    """Simulate the cohort (no files, no database).

    Parameters
    ----------
    params
        Validated parameters (:class:`~cohort.simulate.params.SimulationParams`).
    samples
        RQMC points per structure for the DVHs.
    progress
        ``progress(done, total)`` after each patient.
    only_centres
        Simulate the patients of these centre codes only (each patient is seeded
        by its centre and number, so a part is the same as in the whole cohort).

    Examples
    --------
    >>> cohort = simulate_national(SimulationParams(centres=1, patients=2, seed=1))
    >>> len(cohort.patients) >= 1
    True
    """
    practices = draw_practices(params, np.random.default_rng([params.seed, 0]))
    chosen = [
        (c, p) for c, p in enumerate(practices, start=1)
        if only_centres is None or p.code in only_centres
    ]  # fmt: skip
    total = sum(p.patients for _, p in chosen)
    patients: list[NationalPatient] = []
    for c, practice in chosen:
        for i in range(practice.patients):
            patient = _draw_patient(params, practice, c, i)
            if patient.consented:
                _outcomes(patient, practice, samples)
            patients.append(patient)
            if progress is not None:
                progress(len(patients), total)
    return NationalCohort(params, practices, patients)
