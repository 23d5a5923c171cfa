"""Synthetic multi-centre cohorts: patients, consent, RT datasets and outcomes.

Each centre gets ``patients`` synthetic patients with a hospital identifier
(``HUS-000123``), year of birth, sex, treatment site and a planned consent course; each
patient gets a small DICOM-RT phantom (:func:`etl.phantom.write.write_phantom`) of a
lung
treatment — BODY, PTV, Lung_L, Lung_R, Heart, SpinalCord — whose dose level, gradient
and target position vary per patient, so the DVHs differ. The hospital identifier is
planted in PatientID and PatientName, so that import exercises the pseudonymisation.

Outcomes are drawn from the exact mean dose of the contralateral lung (the phantom
truth): CTCAE pneumonitis grades at 3 and 6 months from an LKB model with ``n = 1``
(mean lung dose; TD50 30.8 Gy, m 0.37, as in Seppenwoolde et al. 2003, grade >= 2), and
QLQ-C30 answers at baseline and 3 months, with fatigue (items 10, 12, 18) worse with
dose. Everything derives from one seed (``numpy.random.default_rng``).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from cohort.consent import ConsentState, Sex, TreatmentSite
from etl.phantom.spec import PhantomSpec, parse_spec
from etl.phantom.write import write_phantom

__all__ = [
    "DEFAULT_CENTRES",
    "LKB_PNEUMONITIS",
    "ConsentPlan",
    "SimulatedPatient",
    "lkb_ntcp",
    "phantom_spec",
    "simulate_cohort",
    "write_datasets",
]

#: Centre codes used in order (more centres get ``C04``, ``C05``, ...).
DEFAULT_CENTRES: tuple[str, ...] = ("HUS", "TAYS", "AUH", "KUH", "OYS")

#: LKB parameters of radiation pneumonitis grade >= 2 on the mean lung dose:
#: ``(TD50 [Gy], m, n)`` (Seppenwoolde et al., IJROBP 2003;55:724-735).
LKB_PNEUMONITIS: tuple[float, float, float] = (30.8, 0.37, 1.0)

_FATIGUE_ITEMS = (10, 12, 18)
_QLQ_ITEMS = 30
_FOUR_POINT_ITEMS = 28


class ConsentPlan(StrEnum):
    """The consent course a synthetic patient follows."""

    CONSENTED = "consented"  # approached, then consented before the data arrive
    DECLINED = "declined"  # approached, then declined: data stay held
    APPROACHED = "approached"  # approached only: data stay held
    LATE = "late"  # approached; consents after the data arrived (held, then loaded)


@dataclass(frozen=True)
class SimulatedPatient:
    """One synthetic patient.

    Attributes
    ----------
    centre
        Centre code.
    hospital_id
        The direct (synthetic) hospital identifier; pseudonymised on import.
    rt_start
        First day of radiotherapy (real time frame; shift before storing).
    dose_gy, gradient_gy_per_mm, ptv_offset_mm
        The phantom's dose at the PTV centre, its gradient along x and the PTV centre.
    lung_mean_gy
        Exact mean dose of Lung_L (contralateral lung), set by :func:`write_datasets`.
    pneumonitis
        CTCAE grade per timepoint (``m3``, ``m6``), filled by :func:`write_datasets`.
    qlq_c30
        Answers 1..30 per timepoint (``baseline``, ``m3``), filled by
        :func:`write_datasets`.
    """

    centre: str
    hospital_id: str
    year_of_birth: int
    sex: Sex
    site: TreatmentSite
    consent: ConsentPlan
    rt_start: datetime.date
    dose_gy: float
    gradient_gy_per_mm: float
    ptv_offset_mm: tuple[float, float, float]
    lung_mean_gy: float = math.nan
    pneumonitis: dict[str, int] = field(default_factory=dict)
    qlq_c30: dict[str, dict[int, int]] = field(default_factory=dict)

    @property
    def consent_before_import(self) -> tuple[ConsentState, ...]:
        """Consent states recorded before the data are imported."""
        if self.consent is ConsentPlan.CONSENTED:
            return (ConsentState.APPROACHED, ConsentState.CONSENTED)
        if self.consent is ConsentPlan.DECLINED:
            return (ConsentState.APPROACHED, ConsentState.DECLINED)
        return (ConsentState.APPROACHED,)

    @property
    def consent_after_import(self) -> tuple[ConsentState, ...]:
        """Consent states recorded after the import (late consent)."""
        return (ConsentState.CONSENTED,) if self.consent is ConsentPlan.LATE else ()

    @property
    def consented(self) -> bool:
        """Whether the patient ends up consenting."""
        return self.consent in {ConsentPlan.CONSENTED, ConsentPlan.LATE}


def centre_codes(n: int) -> list[str]:
    """Return ``n`` centre codes (:data:`DEFAULT_CENTRES`, then ``C06``...)."""
    return [
        DEFAULT_CENTRES[i] if i < len(DEFAULT_CENTRES) else f"C{i + 1:02d}"
        for i in range(n)
    ]


def _consent_plan(index: int, patients: int, centre_index: int) -> ConsentPlan:
    # The last patient of each centre is the exception: declined, approached only or
    # late consent, in turn across centres; the others consent.
    if index != patients - 1 or patients < 2:  # noqa: PLR2004
        return ConsentPlan.CONSENTED
    return (ConsentPlan.DECLINED, ConsentPlan.LATE, ConsentPlan.APPROACHED)[
        centre_index % 3
    ]


def simulate_cohort(
    centres: int = 3, patients: int = 6, seed: int = 1
) -> list[SimulatedPatient]:
    """Draw the patients of a synthetic cohort (no files written).

    Examples
    --------
    >>> cohort = simulate_cohort(2, 3, seed=1)
    >>> [p.hospital_id[:4] for p in cohort][:4], cohort[2].consent.value
    (['HUS-', 'HUS-', 'HUS-', 'TAYS'], 'declined')
    """
    rng = np.random.default_rng(seed)
    out: list[SimulatedPatient] = []
    for c, code in enumerate(centre_codes(centres)):
        numbers = rng.choice(900_000, size=patients, replace=False) + 100_000
        for i in range(patients):
            start = datetime.date(2024, 1, 8) + datetime.timedelta(
                days=int(rng.integers(0, 300))
            )
            out.append(
                SimulatedPatient(
                    centre=code,
                    hospital_id=f"{code}-{int(numbers[i]):06d}",
                    year_of_birth=int(rng.integers(1940, 1975)),
                    sex=Sex.F if rng.random() < 0.45 else Sex.M,  # noqa: PLR2004
                    site=TreatmentSite.LUNG,
                    consent=_consent_plan(i, patients, c),
                    rt_start=start,
                    dose_gy=float(rng.choice([54.0, 60.0, 66.0])),
                    gradient_gy_per_mm=float(-rng.uniform(0.22, 0.32)),
                    ptv_offset_mm=(
                        float(-50 + rng.uniform(-8, 8)),
                        float(rng.uniform(-8, 8)),
                        float(20 + rng.uniform(-10, 10)),
                    ),
                )
            )
    return out


def phantom_spec(patient: SimulatedPatient) -> PhantomSpec:
    """Return the small lung phantom of a patient (4 mm contours and dose grid)."""
    ptv = patient.ptv_offset_mm

    def cyl(name: str, dia: float, height: float, at: tuple[float, ...]) -> Any:
        return {"name": name, "shape": "cylinder", "size_mm": dia,
                "height_mm": height, "offset_mm": list(at), "axis": "z"}  # fmt: skip

    rois = [
        cyl("BODY", 200, 160, (0, 0, 0)) | {"interpreted_type": "EXTERNAL"},
        cyl("Lung_R", 70, 120, (-55, 0, 10)) | {"ct_hu": -750},
        cyl("Lung_L", 70, 120, (55, 0, 10)) | {"ct_hu": -750},
        {
            "name": "Heart",
            "shape": "sphere",
            "size_mm": 60,
            "offset_mm": [20, -10, -35],
            "ct_hu": 40,
        },
        cyl("SpinalCord", 12, 150, (0, 70, 0)) | {"ct_hu": 30},
        {
            "name": "PTV",
            "shape": "sphere",
            "size_mm": 44,
            "offset_mm": list(ptv),
            "interpreted_type": "PTV",
            "ct_hu": 20,
        },
    ]
    return parse_spec(
        {
            "contour_spacing_mm": 4.0,
            "dose_grid_mm": 4.0,
            "ct_pixel_mm": 4.0,
            "rois": rois,
            "dose": [
                {
                    "dose_gy": patient.dose_gy,
                    "at_mm": list(ptv),
                    "gradient": "x",
                    "gradient_gy_per_mm": patient.gradient_gy_per_mm,
                }
            ],
            "plan": {
                "target": "PTV",
                "prescription_gy": patient.dose_gy,
                "fractions": round(patient.dose_gy / 2),
                "beams": 3,
            },
        }
    )


def lkb_ntcp(mean_dose_gy: float, td50_gy: float, m: float) -> float:
    """LKB NTCP for ``n = 1``: ``Phi((D - TD50) / (m TD50))``.

    Examples
    --------
    >>> lkb_ntcp(30.8, 30.8, 0.37)
    0.5
    """
    t = (mean_dose_gy - td50_gy) / (m * td50_gy)
    return 0.5 * math.erfc(-t / math.sqrt(2.0))


def _pneumonitis(rng: np.random.Generator, lung_mean_gy: float) -> dict[str, int]:
    td50, m, _n = LKB_PNEUMONITIS
    p2 = lkb_ntcp(lung_mean_gy, td50, m)
    # Grade >= 2 with the LKB probability (grade 3 in a quarter of those), otherwise
    # grade 1 or 0; pneumonitis peaks around 3 months and settles by 6.
    u = rng.random()
    m3 = (3 if rng.random() < 0.25 else 2) if u < p2 else int(rng.random() < 0.4)  # noqa: PLR2004
    m6 = max(0, m3 - int(rng.integers(0, 2)))
    return {"m3": m3, "m6": m6}


def _qlq(rng: np.random.Generator, burden: float) -> dict[int, int]:
    # burden 0 (well) .. 1 (poor): shifts answers towards "very much" (4; 1 on 29-30).
    answers: dict[int, int] = {}
    for item in range(1, _QLQ_ITEMS + 1):
        extra = 1.5 * burden if item in _FATIGUE_ITEMS else 0.5 * burden
        if item <= _FOUR_POINT_ITEMS:
            answers[item] = int(np.clip(round(1.3 + extra + rng.normal(0, 0.6)), 1, 4))
        else:
            answers[item] = int(
                np.clip(round(5.5 - 3 * burden + rng.normal(0, 0.8)), 1, 7)
            )
    return answers


def write_datasets(
    cohort: list[SimulatedPatient],
    out_dir: Path,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[SimulatedPatient]:
    """Write each patient's phantom and draw the outcomes.

    Phantoms go under ``out_dir/<centre>/<hospital id>``; returns the patients with
    ``lung_mean_gy`` and the outcomes filled.

    Existing folders with a ``truth.json`` are reused (the UIDs derive from the seed, so
    the files would be identical). ``progress(done, total)`` is called per patient.
    """
    import json

    rng = np.random.default_rng([seed, 2])
    done: list[SimulatedPatient] = []
    for i, patient in enumerate(cohort):
        if progress is not None:
            progress(i, len(cohort))
        folder = out_dir / patient.centre / patient.hospital_id
        truth_file = folder / "truth.json"
        if truth_file.exists():
            truth = json.loads(truth_file.read_text(encoding="utf-8"))
        else:
            truth = write_phantom(
                folder,
                phantom_spec(patient),
                patient_id=patient.hospital_id,
                seed=seed,
                study_date=patient.rt_start,
            )
        lung = next(r for r in truth["rois"] if r["name"] == "Lung_L")
        mean = float(lung["mean_gy"])
        burden = min(1.0, mean / 40.0)
        done.append(
            SimulatedPatient(
                **{
                    **patient.__dict__,
                    "lung_mean_gy": mean,
                    "pneumonitis": _pneumonitis(rng, mean),
                    "qlq_c30": {
                        "baseline": _qlq(rng, 0.1),
                        "m3": _qlq(rng, 0.1 + 0.6 * burden),
                    },
                }
            )
        )
    return done
