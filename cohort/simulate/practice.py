"""Centres with their own practice, and their local structure names (pure).

Each centre draws (from the seed) its size around ``--patients``, its case mix, its
preferred fractionations, how well it spares organs (``sparing``: scales the low-dose
bath of the site phantoms), its consent and PROM completion rates, and a naming style
for its structures: TG-263, upper-case abbreviations (``LUNG_L``), English
abbreviations (``Lt Lung``), German (``Lunge li``), Finnish (``Keuhko vas``); a few
patients get a variant (lower case, a stray space, a typo) of the local name. One
centre (when there are at least three) is the toxicity outlier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cohort.simulate.demo_cohort import centre_codes
from cohort.simulate.params import SimulationParams

__all__ = ["NAMING_STYLES", "CentrePractice", "draw_practices", "local_name"]

_BASE_MIX = {"breast": 0.35, "prostate": 0.25, "lung": 0.25, "head_neck": 0.15}

_STEMS = {
    # TG-263: (upper, english, german, finnish); "{s}" is the side
    "Lung": ("LUNG_{S}", "{e} Lung", "Lunge {g}", "Keuhko {f}"),
    "Breast": ("BREAST_{S}", "{e} Breast", "Mamma {g}", "Rinta {f}"),
    "Femur_Head": (
        "FEMUR_HEAD_{S}",
        "{e} Femoral Head",
        "Hueftkopf {g}",
        "Reisiluu {f}",
    ),
    "Parotid": ("PAROTID_{S}", "{e} Parotid", "Parotis {g}", "Korvasylkir {f}"),
    "Glnd_Submand": (
        "SUBMAND_{S}",
        "{e} Submand",
        "Submandibularis {g}",
        "Leuanalus {f}",
    ),
    "Humerus": ("HUMERUS_{S}", "{e} Humerus", "Humerus {g}", "Olkaluu {f}"),
    "BrachialPlex": (
        "BRACHIAL_PLEX_{S}",
        "{e} Brachial Plexus",
        "Plexus brachialis {g}",
        "Hermopunos {f}",
    ),
}
_SIDES = {"L": ("L", "Lt", "li", "vas"), "R": ("R", "Rt", "re", "oik")}
_SINGLE = {
    "Heart": ("HEART", "Heart", "Herz", "Sydan"),
    "A_LAD": ("LAD", "LAD", "RIVA", "LAD"),
    "Lungs": ("LUNGS", "Both Lungs", "Lungen", "Keuhkot"),
    "Rectum": ("RECTUM", "Rectum", "Rektum", "Perasuoli"),
    "Bladder": ("BLADDER", "Bladder", "Blase", "Rakko"),
    "SpinalCord": ("SPINAL_CORD", "Spinal Cord", "Myelon", "Selkaydin"),
    "Larynx": ("LARYNX", "Larynx", "Larynx", "Kurkunpaa"),
    "Musc_Constrict": ("CONSTRICTORS", "Constrictors", "Konstriktoren", "Nielu"),
    "Esophagus": ("ESOPHAGUS", "Oesophagus", "Oesophagus", "Ruokatorvi"),
    "BODY": ("BODY", "External", "Koerper", "Ulkoraja"),
    "Glnd_Thyroid": ("THYROID", "Thyroid", "Schilddruese", "Kilpirauhanen"),
    "SeminalVes": ("SEM_VES", "Seminal Vesicles", "Samenblasen", "Siemenrakkulat"),
    "Canal_Anal": ("ANAL_CANAL", "Anal Canal", "Analkanal", "Perakanava"),
    "PenileBulb": ("PENILE_BULB", "Penile Bulb", "Bulbus penis", "Penikselle"),
    "Bowel_Small": ("SMALL_BOWEL", "Small Bowel", "Duenndarm", "Ohutsuoli"),
    "Colon_Sigmoid": ("SIGMOID", "Sigmoid", "Sigma", "Sigmasuoli"),
    "Urethra": ("URETHRA", "Urethra", "Harnroehre", "Virtsaputki"),
    "Brainstem": ("BRAINSTEM", "Brain Stem", "Hirnstamm", "Aivorunko"),
    "Cavity_Oral": ("ORAL_CAVITY", "Oral Cavity", "Mundhoehle", "Suuontelo"),
    "Larynx_SG": ("SUPRAGLOTTIS", "Supraglottic Larynx", "Supraglottis",
                  "Supraglottis"),
    "Musc_Constrict_S": ("PCM_SUP", "Sup Constrictor", "Konstriktor sup",
                         "Nielu yla"),
    "Musc_Constrict_M": ("PCM_MED", "Mid Constrictor", "Konstriktor med",
                         "Nielu keski"),
    "Musc_Constrict_I": ("PCM_INF", "Inf Constrictor", "Konstriktor inf",
                         "Nielu ala"),
    "Trachea": ("TRACHEA", "Trachea", "Trachea", "Henkitorvi"),
    "Bronchus": ("BRONCHUS", "Bronchus", "Bronchus", "Keuhkoputki"),
}  # fmt: skip

#: Naming styles in the order centres take them.
NAMING_STYLES = ("tg263", "upper", "english", "german", "finnish")


def local_name(tg263: str, style: str) -> str:
    """Return the local name of a TG-263 structure in a naming style.

    Targets (``PTV``, ``CTV``, ``PTV_High`` ...) keep their names.

    Examples
    --------
    >>> local_name("Lung_L", "english"), local_name("Lung_L", "finnish")
    ('Lt Lung', 'Keuhko vas')
    """
    if style == "tg263" or tg263.startswith(("PTV", "CTV", "GTV")):
        return tg263
    index = NAMING_STYLES.index(style) - 1
    if tg263 in _SINGLE:
        return _SINGLE[tg263][index]
    stem, _, side = tg263.rpartition("_")
    if stem in _STEMS and side in _SIDES:
        upper, english, german, finnish = _SIDES[side]
        return _STEMS[stem][index].format(S=upper, e=english, g=german, f=finnish)
    return tg263


def name_variant(name: str, rng: np.random.Generator) -> str:
    """Return a variant of a local name: lower case, a double space, a typo."""
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return name.lower()
    if kind == 1 and " " in name:
        return name.replace(" ", "  ", 1)
    if len(name) > 3:  # noqa: PLR2004
        i = int(rng.integers(1, len(name) - 2))
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    return name


@dataclass(frozen=True)
class CentrePractice:
    """How one centre treats and records (drawn by :func:`draw_practices`)."""

    code: str
    patients: int
    case_mix: dict[str, float]
    schedule_weights: dict[str, tuple[float, ...]]
    sparing: float
    naming: str
    recruitment: float
    completion: float
    toxicity_odds_ratio: float

    def as_dict(self) -> dict[str, object]:
        """Return the practice as JSON-ready data (for the truth file)."""
        return {
            "code": self.code,
            "patients": self.patients,
            "case_mix": self.case_mix,
            "schedule_weights": {k: list(v) for k, v in self.schedule_weights.items()},
            "sparing": self.sparing,
            "naming": self.naming,
            "recruitment": self.recruitment,
            "completion": self.completion,
            "toxicity_odds_ratio": self.toxicity_odds_ratio,
        }


def _rate_around(rng: np.random.Generator, mean: float, sd_logit: float) -> float:
    if mean >= 1.0:
        return 1.0
    logit = np.log(mean / (1.0 - mean)) + rng.normal(0.0, sd_logit)
    return float(1.0 / (1.0 + np.exp(-logit)))


def draw_practices(
    params: SimulationParams, rng: np.random.Generator
) -> list[CentrePractice]:
    """Draw the practice of every centre."""
    codes = centre_codes(params.centres)
    sizes = rng.gamma(8.0, 1.0, size=params.centres)
    sizes = sizes / sizes.mean() if params.centres > 1 else np.ones(1)
    outlier = int(rng.integers(0, params.centres)) if params.centres >= 3 else -1  # noqa: PLR2004
    out = []
    for i, code in enumerate(codes):
        base = np.array([_BASE_MIX[s] for s in params.sites])
        mix = rng.dirichlet(base / base.sum() * 20.0)
        weights = {
            site: tuple(
                float(w)
                for w in rng.dirichlet(np.full(len(params.schedules[site]), 2.0))
            )
            for site in params.sites
        }
        out.append(
            CentrePractice(
                code=code,
                patients=max(1, round(params.patients * float(sizes[i]))),
                case_mix={s: float(m) for s, m in zip(params.sites, mix, strict=True)},
                schedule_weights=weights,
                sparing=float(np.clip(rng.lognormal(0.0, 0.12), 0.8, 1.25)),
                naming=NAMING_STYLES[i % len(NAMING_STYLES)],
                recruitment=_rate_around(rng, params.recruitment, 0.3),
                completion=_rate_around(rng, params.completion, 0.3),
                toxicity_odds_ratio=params.outlier_odds_ratio if i == outlier else 1.0,
            )
        )
    return out
