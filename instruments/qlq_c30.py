"""EORTC QLQ-C30 v3.0: item and scale structure, scoring, change and deterioration.

The structure is the scale table of the EORTC QLQ-C30 Scoring Manual (3rd ed., 2001)
and the Summary Score of Giesinger et al. (2016), defined once, in the shipped data
files ``qlq_c30_items.csv`` and ``qlq_c30_scales.csv`` (read by
:mod:`instruments.registry`): item numbers, response ranges and neutral labels, no item
wording (the questionnaire is licensed by the EORTC Quality of Life Group; sites supply
their language version's wording, see :mod:`instruments.wording`). Pure: numpy only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from instruments.errors import InstrumentSpecError
from instruments.registry import get_instrument
from instruments.scoring import (
    InstrumentSpec,
    ScaleType,
    ScoreResult,
    score_responses,
    validate_responses,
)

__all__ = [
    "CLINICALLY_RELEVANT_CHANGE_POINTS",
    "QLQ_C30",
    "SCORE_CODES",
    "change_from_baseline",
    "deterioration",
    "higher_is_better",
    "score_qlq_c30",
    "validate_qlq_c30",
]

#: Change (points on 0-100) regarded as clinically relevant (Osoba et al. 1998).
CLINICALLY_RELEVANT_CHANGE_POINTS = 10.0

#: The QLQ-C30 v3.0 (items 1-28 answered 1-4, items 29-30 answered 1-7), read from
#: its shipped data files by :func:`instruments.registry.get_instrument`.
QLQ_C30: InstrumentSpec = get_instrument("QLQ-C30").spec

#: Output columns: the 15 scales, then ``SUMMARY``.
SCORE_CODES: tuple[str, ...] = QLQ_C30.output_codes


def validate_qlq_c30(
    responses: npt.ArrayLike,
) -> tuple[npt.NDArray[np.bool_], dict[int, str]]:
    """Validate QLQ-C30 response sets (see :func:`scoring.validate_responses`).

    Examples
    --------
    >>> validate_qlq_c30(np.full((1, 30), 2.5))[1]
    {0: 'item q1 value 2.5 is not an integer'}
    """
    return validate_responses(QLQ_C30, responses)


def score_qlq_c30(responses: npt.ArrayLike, *, strict: bool = False) -> ScoreResult:
    """Score QLQ-C30 response sets: 15 scales and the summary score.

    Parameters
    ----------
    responses
        ``(N, 30)`` answers to items 1-30, ``NaN`` for missing (or one row of 30).
    strict
        Raise on the first invalid response set instead of reporting it.

    Returns
    -------
    ScoreResult
        Columns :data:`SCORE_CODES`, scores on 0-100, not rounded.

    Examples
    --------
    >>> r = score_qlq_c30(np.r_[np.full(28, 2.0), 4.0, 7.0])
    >>> [round(float(v), 4) for v in r.scores[0, :3]]
    [75.0, 66.6667, 66.6667]
    """
    return score_responses(QLQ_C30, responses, strict=strict)


def higher_is_better(code: str) -> bool:
    """Whether a higher score of ``code`` is better (functional, QL2, SUMMARY).

    Examples
    --------
    >>> higher_is_better("PF2"), higher_is_better("FA"), higher_is_better("SUMMARY")
    (True, False, True)
    """
    if code == QLQ_C30.summary_code:
        return True
    try:
        return QLQ_C30.scale(code).scale_type is not ScaleType.SYMPTOM
    except InstrumentSpecError:
        raise InstrumentSpecError(f"QLQ-C30 has no score {code!r}") from None


def change_from_baseline(
    scores: npt.ArrayLike, baseline: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Return ``scores - baseline`` (points; ``NaN`` where either is missing).

    Arrays broadcast, so one baseline row may be compared with many follow-ups.

    Examples
    --------
    >>> change_from_baseline([50.0, np.nan], [40.0, 10.0]).tolist()
    [10.0, nan]
    """
    return np.asarray(scores, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)


def deterioration(
    scores: npt.ArrayLike,
    baseline: npt.ArrayLike,
    codes: tuple[str, ...] | list[str] | str = SCORE_CODES,
    *,
    threshold_points: float = CLINICALLY_RELEVANT_CHANGE_POINTS,
) -> npt.NDArray[np.bool_]:
    """Flag clinically relevant deterioration from baseline.

    A deterioration is a fall of at least ``threshold_points`` for the functional
    scales, QL2 and the summary score, and a rise of at least ``threshold_points`` for
    the symptom scales. Where the change is unknown (a score missing) the flag is
    ``False``; test ``np.isnan(change_from_baseline(...))`` to tell those apart.

    Parameters
    ----------
    scores, baseline
        Scores with the last axis in the order of ``codes`` (broadcastable).
    codes
        Score codes of the last axis (default all of :data:`SCORE_CODES`), or one code.
    threshold_points
        Minimal change in points (default 10).

    Examples
    --------
    >>> deterioration([[60.0, 30.0]], [[70.0, 25.0]], ["PF2", "FA"]).tolist()
    [[True, False]]
    """
    code_list = [codes] if isinstance(codes, str) else list(codes)
    sign = np.array([-1.0 if higher_is_better(c) else 1.0 for c in code_list])
    change = change_from_baseline(scores, baseline)
    if change.shape[-1:] != sign.shape and not (change.ndim == 0 and sign.size == 1):
        raise InstrumentSpecError(
            f"last axis of scores has {change.shape[-1:]} values for {len(sign)} codes"
        )
    with np.errstate(invalid="ignore"):
        flagged: npt.NDArray[np.bool_] = (change * sign) >= threshold_points
    return flagged
