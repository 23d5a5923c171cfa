"""The simulated overall stage of a patient (UICC/AJCC stage group, with truth).

Each patient's stage is drawn from a site-specific distribution of patients treated
with radiotherapy, on its own random stream (``default_rng([*seed, 4])``), so adding
the stage changes no other draw of the patient. The distributions are plausible, not
registry figures: breast (adjuvant RT after surgery) mostly I-II with DCIS as 0;
prostate (radical RT) mostly II-III; lung (SBRT for early, chemoradiotherapy for
locally advanced disease) mostly I and III; head and neck mostly III-IV. Given the
patient's number of fractions, lung follows the schedule: SBRT (at most
:data:`etl.phantom.sites.SBRT_MAX_FRACTIONS` fractions, a small peripheral target)
mostly stage I, conventional RT (its phantom treats the mediastinal nodes) mostly
II-III. Groups I-III
carry a sub-group letter (``IIIA``), as centres record them; the case-mix factor is
the group.
"""

from __future__ import annotations

import numpy as np

from cohort.stage import STAGE_GROUPS
from etl.phantom.sites import SBRT_MAX_FRACTIONS

__all__ = ["LUNG_BY_SCHEDULE", "STAGE_DISTRIBUTION", "draw_stage"]

#: Probability of each group of :data:`cohort.stage.STAGE_GROUPS` (0, I..IV) by site.
STAGE_DISTRIBUTION: dict[str, tuple[float, ...]] = {
    "breast": (0.12, 0.42, 0.33, 0.12, 0.01),
    "prostate": (0.0, 0.10, 0.45, 0.40, 0.05),
    "lung": (0.0, 0.25, 0.10, 0.45, 0.20),
    "head_neck": (0.0, 0.12, 0.16, 0.22, 0.50),
}
#: Lung by schedule: (SBRT, conventional).
LUNG_BY_SCHEDULE: tuple[tuple[float, ...], tuple[float, ...]] = (
    (0.0, 0.85, 0.15, 0.0, 0.0),
    (0.0, 0.05, 0.20, 0.60, 0.15),
)
_OTHER = (0.0, 0.25, 0.25, 0.25, 0.25)
_LETTERS = {"I": "AB", "II": "AB", "III": "ABC"}
#: The stage's stream of the patient (1: phantom jitter, 2: outcomes, 3: names of
#: the structures added later).
_STREAM = 4


def draw_stage(site: str, seed: tuple[int, ...], fractions: int | None = None) -> str:
    """Return the stage of the patient with ``seed`` (e.g. ``IIIA``).

    ``fractions`` (the patient's schedule) selects the lung distribution of its
    schedule (:data:`LUNG_BY_SCHEDULE`); without it lung draws from
    :data:`STAGE_DISTRIBUTION`. The draws are the same either way (one group, one
    letter), so the stream is unchanged.

    Examples
    --------
    >>> draw_stage("breast", (1, 1, 0)) == draw_stage("breast", (1, 1, 0))
    True
    >>> draw_stage("lung", (1, 1, 0), fractions=3)[:2] in {"IA", "IB", "II"}
    True
    """
    rng = np.random.default_rng([*seed, _STREAM])
    weights = STAGE_DISTRIBUTION.get(site, _OTHER)
    if site == "lung" and fractions is not None:
        weights = LUNG_BY_SCHEDULE[int(fractions > SBRT_MAX_FRACTIONS)]
    group = STAGE_GROUPS[int(rng.choice(len(STAGE_GROUPS), p=list(weights)))]
    letters = _LETTERS.get(group, "")
    return group + letters[int(rng.integers(len(letters)))] if letters else group
