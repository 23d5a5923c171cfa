r"""Outcome truth of the national simulator: LKB toxicity, QLQ-C30, follow-up (pure).

Toxicity of each endpoint follows an LKB model on the organ's DVH in EQD2 (per bin,
with the patient's own number of fractions, as :class:`ntcp.lkb.LKBModel` with
``alpha_beta_gy`` computes it):

.. math::

    p = \Phi\!\left(\frac{\mathrm{gEUD}_n(\mathrm{EQD2}) - TD_{50}}{m\,TD_{50}}\right),
    \qquad \mathrm{EQD2} = D \frac{D/N + \alpha/\beta}{2 + \alpha/\beta}

At the outlier centre the odds of grade >= 2 are multiplied by its odds ratio. The peak
grade is >= 2 with probability ``p`` (3 in a quarter of those), else 0 or 1; it is
reached at the endpoint's peak timepoint, lower before and after.

QLQ-C30 answers derive from a latent burden (0 well .. 1 poor): a baseline level, a dip
at the end of RT, recovery over months, plus a toxicity term while grade >= 2.
A questionnaire is completed with probability ``logit^-1(logit(c) - 4 (burden - 0.35))``
(``c`` the centre's completion rate): sicker patients answer less.

References: Seppenwoolde et al. IJROBP 2003 (pneumonitis); Michalski et al. IJROBP
2010 (QUANTEC rectum); Deasy et al. IJROBP 2010 (QUANTEC parotid); Christianen et
al. Radiother Oncol 2012 (dysphagia: the superior pharyngeal constrictor's mean dose
is the main predictor; the truth here has that organ only).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ENDPOINTS",
    "PROM_TIMEPOINTS",
    "TIMEPOINT_DAYS",
    "Endpoint",
    "draw_grades",
    "eqd2_geud_gy",
    "lkb_probability",
    "prom_burden",
    "qlq_c30_answers",
]

FloatArray = NDArray[np.float64]

#: Days from the end of RT (baseline: from the start) of each follow-up timepoint.
TIMEPOINT_DAYS: dict[str, int] = {
    "baseline": -3, "eot": 0, "m3": 91, "m6": 182, "m12": 365, "m24": 730,
    "m36": 1095, "m60": 1826,
}  # fmt: skip
PROM_TIMEPOINTS = tuple(TIMEPOINT_DAYS)
_TOX_TIMEPOINTS = ("eot", "m3", "m6", "m12", "m24")


@dataclass(frozen=True)
class Endpoint:
    """An LKB truth model; ``{side}``/``{contra}`` in the organ resolve per patient."""

    site: str
    organ: str
    term: str
    td50_gy: float
    m: float
    n: float
    alpha_beta_gy: float
    peak: str

    def organ_for(self, laterality: str) -> str:
        """Return the organ's TG-263 name for a patient of this laterality."""
        contra = "R" if laterality == "L" else "L"
        return self.organ.format(side=laterality, contra=contra)

    def as_dict(self) -> dict[str, object]:
        """Return the model as JSON-ready data."""
        return dict(self.__dict__)


#: The truth models (EQD2, alpha/beta 3 Gy).
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("breast", "Breast_{side}", "Fibrosis deep connective tissue",
             70.0, 0.20, 0.30, 3.0, "m24"),
    Endpoint("prostate", "Rectum", "Proctitis", 76.9, 0.13, 0.09, 3.0, "m24"),
    Endpoint("lung", "Lungs", "Pneumonitis", 30.8, 0.37, 1.0, 3.0, "m3"),
    Endpoint("lung", "Esophagus", "Esophagitis", 45.0, 0.30, 0.40, 3.0, "eot"),
    Endpoint("head_neck", "Parotid_{contra}", "Dry mouth", 39.9, 0.40, 1.0, 3.0,
             "m12"),
    # dysphagia follows the superior constrictor's mean dose (Christianen 2012)
    Endpoint("head_neck", "Musc_Constrict_S", "Dysphagia", 60.0, 0.15, 1.0, 3.0,
             "m6"),
)  # fmt: skip


def eqd2_geud_gy(
    dose_gy: FloatArray,
    fraction: FloatArray,
    fractions: int,
    alpha_beta_gy: float,
    n: float,
) -> float:
    """Return the gEUD (Gy) of a differential DVH after per-bin EQD2 conversion.

    Examples
    --------
    >>> eqd2_geud_gy(np.array([60.0]), np.array([1.0]), 30, 3.0, 1.0)
    60.0
    """
    d = np.asarray(dose_gy, dtype=np.float64)
    eqd2 = d * (d / fractions + alpha_beta_gy) / (2.0 + alpha_beta_gy)
    v = np.asarray(fraction, dtype=np.float64)
    keep = v > 0
    return float(np.sum(v[keep] * eqd2[keep] ** (1.0 / n)) ** n)


def lkb_probability(
    geud_gy: float, td50_gy: float, m: float, odds_ratio: float = 1.0
) -> float:
    """LKB NTCP, with the odds multiplied by ``odds_ratio``."""
    p = 0.5 * math.erfc(-(geud_gy - td50_gy) / (m * td50_gy) / math.sqrt(2.0))
    if odds_ratio == 1.0:
        return p
    odds = odds_ratio * p / max(1.0 - p, 1e-300)
    return odds / (1.0 + odds)


def draw_grades(
    rng: np.random.Generator, probability: float, peak: str
) -> dict[str, int]:
    """Grades per toxicity timepoint: the peak grade at ``peak``, lower elsewhere."""
    if rng.random() < probability:
        top = 3 if rng.random() < 0.25 else 2  # noqa: PLR2004
    else:
        top = int(rng.random() < 0.35)  # noqa: PLR2004
    k = _TOX_TIMEPOINTS.index(peak)
    grades = {}
    for i, tp in enumerate(_TOX_TIMEPOINTS):
        drop = abs(i - k)
        grades[tp] = max(0, top - drop + int(rng.random() < 0.3 and drop > 0))  # noqa: PLR2004
        grades[tp] = min(grades[tp], top)
    return grades


def prom_burden(baseline: float, timepoint: str, site: str, toxic: bool) -> float:
    """Return the latent burden (0 well .. 1 poor) at a timepoint."""
    dip = {"eot": 0.25, "m3": 0.12, "m6": 0.06}.get(timepoint, 0.03)
    if timepoint == "baseline":
        dip = 0.0
    if site == "head_neck":
        dip *= 1.6
    tox = 0.22 if toxic and timepoint != "baseline" else 0.0
    return float(np.clip(baseline + dip + tox, 0.0, 1.0))


def completes(rng: np.random.Generator, completion: float, burden: float) -> bool:
    """Whether a questionnaire is completed (informative: sicker answer less)."""
    if completion >= 1.0:
        return True
    logit = math.log(completion / (1.0 - completion)) - 4.0 * (burden - 0.35)
    return bool(rng.random() < 1.0 / (1.0 + math.exp(-logit)))


def qlq_c30_answers(rng: np.random.Generator, burden: float) -> dict[int, int]:
    """QLQ-C30 answers 1..30 for a burden (items 29-30 on 1-7, others 1-4)."""
    answers: dict[int, int] = {}
    noise = rng.normal(0.0, 0.6, size=30)
    for item in range(1, 29):
        extra = (2.2 if item in {10, 12, 18} else 1.4) * burden
        answers[item] = int(np.clip(round(1.2 + extra + noise[item - 1]), 1, 4))
    for item in (29, 30):
        answers[item] = int(np.clip(round(6.0 - 4.5 * burden + noise[item - 1]), 1, 7))
    return answers


def timepoint_date(
    rt_start: datetime.date, rt_end: datetime.date, timepoint: str
) -> datetime.date:
    """Return the date of a timepoint (baseline before the start, others after)."""
    if timepoint == "baseline":
        return rt_start + datetime.timedelta(days=TIMEPOINT_DAYS["baseline"])
    return rt_end + datetime.timedelta(days=TIMEPOINT_DAYS[timepoint])
