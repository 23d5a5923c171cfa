"""Instrument definitions and vectorised scoring of EORTC-style questionnaires.

An instrument is a set of numbered items with an integer response range and a set of
scales, each the mean of some items linearly transformed to 0-100 (EORTC QLQ-C30 Scoring
Manual, 3rd ed., 2001). This module is pure: it holds no item wording, reads no files
and imports only numpy.

Response sets are an ``(N, n_items)`` float array, one row per completed questionnaire,
columns in item order, ``NaN`` for a missing answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from instruments.errors import InstrumentSpecError, ResponseValidationError

__all__ = [
    "InstrumentSpec",
    "ItemSpec",
    "ScaleSpec",
    "ScaleType",
    "ScoreResult",
    "score_responses",
    "validate_responses",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class ScaleType(StrEnum):
    """Kind of scale; decides the direction of the linear transformation."""

    FUNCTIONAL = "functional"
    SYMPTOM = "symptom"
    GLOBAL = "global"


@dataclass(frozen=True)
class ItemSpec:
    """One questionnaire item.

    Attributes
    ----------
    number
        Item number as printed on the form (1-based); its FHIR linkId is ``q<number>``.
    response_min, response_max
        Allowed integer answers, inclusive.
    label
        A short neutral topic label (never the licensed item wording).
    """

    number: int
    response_min: int
    response_max: int
    label: str = ""

    @property
    def link_id(self) -> str:
        """FHIR linkId and CSV column name of the item (``q12``)."""
        return f"q{self.number}"


@dataclass(frozen=True)
class ScaleSpec:
    """One scale: the mean of its items, transformed to 0-100.

    Attributes
    ----------
    code
        Scale code as in the Scoring Manual (``PF2``, ``FA``).
    name
        Scale name.
    scale_type
        Functional scales score ``(1 - (RS - 1) / range) * 100``; symptom scales and the
        global health status score ``(RS - 1) / range * 100``.
    items
        Item numbers of the scale.
    item_range
        Difference between the largest and smallest possible item answer.
    in_summary
        Whether the scale enters the summary score (symptom scales enter as
        ``100 - score``).
    """

    code: str
    name: str
    scale_type: ScaleType
    items: tuple[int, ...]
    item_range: int
    in_summary: bool = False


@dataclass(frozen=True)
class InstrumentSpec:
    """Items and scales of one instrument.

    Attributes
    ----------
    code
        Instrument code (``QLQ-C30``).
    version
        Instrument version (``3.0``).
    items
        Items in column order.
    scales
        Scales in output order.
    summary_code
        Column name of the summary score, or ``None`` if the instrument has none.
    """

    code: str
    version: str
    items: tuple[ItemSpec, ...]
    scales: tuple[ScaleSpec, ...]
    summary_code: str | None = None
    _column: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        numbers = [item.number for item in self.items]
        if len(set(numbers)) != len(numbers):
            raise InstrumentSpecError(f"{self.code}: item numbers repeat")
        column = {number: i for i, number in enumerate(numbers)}
        for scale in self.scales:
            unknown = [n for n in scale.items if n not in column]
            if unknown or not scale.items:
                raise InstrumentSpecError(
                    f"{self.code}: scale {scale.code} names unknown items {unknown}"
                )
        object.__setattr__(self, "_column", column)

    @property
    def n_items(self) -> int:
        """Number of items (columns of a response array)."""
        return len(self.items)

    @property
    def output_codes(self) -> tuple[str, ...]:
        """Scale codes in output order, then the summary score if any."""
        codes = tuple(scale.code for scale in self.scales)
        return (*codes, self.summary_code) if self.summary_code else codes

    def column(self, number: int) -> int:
        """Return the column index of item ``number``."""
        try:
            return self._column[number]
        except KeyError:
            raise InstrumentSpecError(f"{self.code} has no item {number}") from None

    def scale(self, code: str) -> ScaleSpec:
        """Return the scale with ``code``."""
        for scale in self.scales:
            if scale.code == code:
                return scale
        raise InstrumentSpecError(f"{self.code} has no scale {code}")


@dataclass(frozen=True)
class ScoreResult:
    """Scores of N response sets.

    Attributes
    ----------
    codes
        Column names of ``scores``: the scales, then the summary score.
    scores
        ``(N, len(codes))`` scores on 0-100, ``NaN`` where not scorable.
    valid
        ``(N,)`` whether each response set passed validation; the scores of a rejected
        set are all ``NaN``.
    errors
        Row index -> message for every rejected response set.
    """

    codes: tuple[str, ...]
    scores: FloatArray
    valid: BoolArray
    errors: dict[int, str]

    def column(self, code: str) -> FloatArray:
        """Return the scores of one scale (or the summary) as an ``(N,)`` array."""
        return self.scores[:, self.codes.index(code)]


#: Rows processed at a time, so that temporaries stay in the CPU cache.
_CHUNK_ROWS = 16_384


def _format_value(value: float) -> str:
    return (
        str(int(value)) if np.isfinite(value) and value == int(value) else repr(value)
    )


def validate_responses(
    spec: InstrumentSpec, responses: npt.ArrayLike
) -> tuple[BoolArray, dict[int, str]]:
    """Check every answer against its item's integer response range.

    Parameters
    ----------
    spec
        The instrument.
    responses
        ``(N, n_items)`` answers, ``NaN`` for missing.

    Returns
    -------
    valid
        ``(N,)`` True where every answer is missing or an allowed integer.
    errors
        Row index -> message naming the first offending item and its value.

    Examples
    --------
    >>> from instruments.qlq_c30 import QLQ_C30
    >>> row = np.full((1, 30), np.nan)
    >>> row[0, 4] = 5
    >>> validate_responses(QLQ_C30, row)[1]
    {0: 'item q5 value 5 is outside the allowed range 1-4'}
    """
    x = _as_matrix(spec, responses)
    lo = np.array([item.response_min for item in spec.items], dtype=np.float64)
    hi = np.array([item.response_max for item in spec.items], dtype=np.float64)
    valid = np.ones(x.shape[0], dtype=np.bool_)
    for begin in range(0, x.shape[0], _CHUNK_ROWS):
        block = x[begin : begin + _CHUNK_ROWS]
        valid[begin : begin + block.shape[0]] = ~_bad_answers(block, lo, hi).any(axis=1)
    bad_rows = np.flatnonzero(~valid)
    bad = _bad_answers(x[bad_rows], lo, hi)
    errors: dict[int, str] = {}
    for k, row in enumerate(bad_rows):
        col = int(np.argmax(bad[k]))
        item = spec.items[col]
        value = float(x[row, col])
        if np.isfinite(value) and value.is_integer():
            reason = (
                f"is outside the allowed range {item.response_min}-{item.response_max}"
            )
        elif np.isfinite(value):
            reason = "is not an integer"
        else:
            reason = "is not a finite number"
        errors[int(row)] = f"item {item.link_id} value {_format_value(value)} {reason}"
    return valid, errors


def _bad_answers(x: FloatArray, lo: FloatArray, hi: FloatArray) -> BoolArray:
    """Answers that are given but not an integer within their item's range."""
    # NaN (missing) fails every comparison, so it is never "bad" here.
    in_range = (x >= lo) & (x <= hi) & (x == np.floor(x))
    bad: BoolArray = ~in_range & ~np.isnan(x)
    return bad


def _as_matrix(spec: InstrumentSpec, responses: npt.ArrayLike) -> FloatArray:
    x = np.asarray(responses, dtype=np.float64)
    if x.ndim == 1:
        x = x[np.newaxis, :]
    if x.ndim != 2 or x.shape[1] != spec.n_items:  # noqa: PLR2004
        raise ResponseValidationError(
            f"{spec.code} responses must have {spec.n_items} columns,"
            f" got shape {x.shape}"
        )
    return x


def _score_block(spec: InstrumentSpec, x: FloatArray) -> FloatArray:
    """Score a block of rows; return ``(len(output_codes), rows)``."""
    xt = np.ascontiguousarray(x.T)  # item-major: a scale sums a few contiguous rows
    answered = ~np.isnan(xt)
    filled = np.where(answered, xt, 0.0)
    out = np.full((len(spec.output_codes), x.shape[0]), np.nan)
    summary = np.zeros(x.shape[0])
    n_summary = 0
    for k, scale in enumerate(spec.scales):
        cols = [spec.column(n) for n in scale.items]
        n_answered = answered[cols].sum(axis=0)
        total = filled[cols].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = np.where(2 * n_answered >= len(cols), total / n_answered, np.nan)
        if scale.scale_type is ScaleType.FUNCTIONAL:
            score = (1.0 - (raw - 1.0) / scale.item_range) * 100.0
        else:
            score = (raw - 1.0) / scale.item_range * 100.0
        out[k] = score
        if scale.in_summary:
            # NaN propagates: the summary is missing unless every part is scored.
            summary += 100.0 - score if scale.scale_type is ScaleType.SYMPTOM else score
            n_summary += 1
    if spec.summary_code is not None and n_summary:
        out[-1] = summary / n_summary
    return out


def score_responses(
    spec: InstrumentSpec, responses: npt.ArrayLike, *, strict: bool = False
) -> ScoreResult:
    r"""Score response sets per the EORTC Scoring Manual (3rd ed.).

    For each scale the raw score is the mean of its answered items,

    .. math:: RS = \frac{1}{n}\sum_{i \in \text{answered}} I_i ,

    computed only if at least half of the scale's items are answered (otherwise the
    scale is missing), then

    .. math::
        S_\text{functional} = \left(1 - \frac{RS - 1}{\text{range}}\right) 100,
        \qquad
        S_\text{symptom, global} = \frac{RS - 1}{\text{range}}\, 100 .

    The summary score (Giesinger et al. 2016) is the mean of the ``in_summary`` scales,
    symptom scales entering as ``100 - S``; it is missing unless all of them are scored.

    Parameters
    ----------
    spec
        The instrument.
    responses
        ``(N, n_items)`` answers in item order, ``NaN`` for missing.
    strict
        Raise :class:`ResponseValidationError` for the first rejected response set
        instead of reporting it in ``errors``.

    Returns
    -------
    ScoreResult
        Scores (not rounded), validity and messages. An invalid response set is
        rejected as a whole (all its scores ``NaN``); an all-missing set is valid with
        all scores ``NaN``.

    References
    ----------
    Fayers PM et al. The EORTC QLQ-C30 Scoring Manual (3rd ed.). EORTC, Brussels 2001.
    Giesinger JM et al. J Clin Epidemiol 2016;69:79-88.

    Examples
    --------
    >>> from instruments.qlq_c30 import QLQ_C30
    >>> result = score_responses(QLQ_C30, np.ones((1, 30)))
    >>> float(result.column("PF2")[0]), float(result.column("FA")[0])
    (100.0, 0.0)
    """
    x = _as_matrix(spec, responses)
    valid, errors = validate_responses(spec, x)
    if strict and errors:
        row = min(errors)
        raise ResponseValidationError(f"response set {row}: {errors[row]}")
    codes = spec.output_codes
    scores = np.full((x.shape[0], len(codes)), np.nan)
    for begin in range(0, x.shape[0], _CHUNK_ROWS):
        block = x[begin : begin + _CHUNK_ROWS]
        scores[begin : begin + block.shape[0]] = _score_block(spec, block).T
    scores[~valid] = np.nan
    return ScoreResult(codes=codes, scores=scores, valid=valid, errors=errors)
