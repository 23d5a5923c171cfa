"""The endpoint grammar of NTCP datasets (a contract of the command line).

``ctcae:TERM[|TERM...]>=GRADE@DAYSd``
    Any of the CTCAE terms at or above ``GRADE`` (1-5) within ``DAYS`` days after the
    start of radiotherapy, e.g. ``ctcae:Pneumonitis>=2@365d``.
``qlqc30:SCALE-POINTS@TIMEPOINT``
    A deterioration of at least ``POINTS`` (10 in the contract) on an EORTC QLQ-C30
    scale from baseline to ``TIMEPOINT``, e.g. ``qlqc30:FA-10@m12``. For functional
    scales and global health status, deterioration is a fall; for symptom scales a rise.

Pure parsing: the terms are not checked against the CTCAE catalogue here (pass
``known_terms`` to do so).

References
----------
Osoba D et al. Interpreting the significance of changes in health-related
quality-of-life scores. J Clin Oncol 1998;16:139-144.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum

from instruments.qlq_c30 import QLQ_C30, SCORE_CODES, higher_is_better
from ntcp.errors import EndpointSyntaxError

__all__ = [
    "QLQC30_SCALES",
    "CtcaeEndpoint",
    "Direction",
    "Endpoint",
    "QlqC30Endpoint",
    "parse_endpoint",
]


class Direction(StrEnum):
    """Which change of a QLQ-C30 scale is a deterioration."""

    FALL = "fall"
    RISE = "rise"


#: QLQ-C30 scale codes (as scored by ``instruments``) and their deterioration
#: direction, from the instrument's structure; the summary score is ``SUMSC``.
QLQC30_SCALES: dict[str, Direction] = {
    **{
        code: Direction.FALL if higher_is_better(code) else Direction.RISE
        for code in SCORE_CODES
        if code != QLQ_C30.summary_code
    },
    "SUMSC": Direction.FALL,
}
_ALIASES = {"QL": "QL2", "PF": "PF2", "RF": "RF2"}
_MAX_GRADE = 5

_CTCAE = re.compile(r"^ctcae:(?P<terms>[^>@]+)>=(?P<grade>\d+)@(?P<days>\d+)d$")
_QLQ = re.compile(
    r"^qlqc30:(?P<scale>[A-Za-z0-9]+)-(?P<points>\d+(?:\.\d+)?)@(?P<tp>[A-Za-z][A-Za-z0-9_]*)$"
)


@dataclass(frozen=True)
class CtcaeEndpoint:
    """Any of ``terms`` at grade >= ``min_grade`` within ``window_days`` of RT start."""

    terms: tuple[str, ...]
    min_grade: int
    window_days: int

    def __str__(self) -> str:
        return f"ctcae:{'|'.join(self.terms)}>={self.min_grade}@{self.window_days}d"


@dataclass(frozen=True)
class QlqC30Endpoint:
    """Deterioration of ``scale`` by >= ``points`` from baseline at ``timepoint``."""

    scale: str
    points: float
    timepoint: str

    @property
    def direction(self) -> Direction:
        """Fall for functional scales and global health, rise for symptoms."""
        return QLQC30_SCALES[self.scale]

    def is_deterioration(self, baseline: float, follow_up: float) -> bool:
        """Tell whether ``baseline`` -> ``follow_up`` is a deterioration."""
        change = follow_up - baseline
        if self.direction is Direction.FALL:
            return change <= -self.points
        return change >= self.points

    def __str__(self) -> str:
        return f"qlqc30:{self.scale}-{self.points:g}@{self.timepoint}"


Endpoint = CtcaeEndpoint | QlqC30Endpoint


def parse_endpoint(spec: str, known_terms: Container[str] | None = None) -> Endpoint:
    """Parse an endpoint specification.

    Parameters
    ----------
    spec : str
        ``ctcae:TERM[|TERM...]>=GRADE@DAYSd`` or ``qlqc30:SCALE-POINTS@TIMEPOINT``.
    known_terms : container of str, optional
        If given, every CTCAE term must be in it.

    Returns
    -------
    CtcaeEndpoint or QlqC30Endpoint

    Raises
    ------
    EndpointSyntaxError
        Naming what is wrong.

    Examples
    --------
    >>> parse_endpoint("ctcae:Pneumonitis|Cough>=2@365d")
    CtcaeEndpoint(terms=('Pneumonitis', 'Cough'), min_grade=2, window_days=365)
    >>> str(parse_endpoint("qlqc30:FA-10@m12"))
    'qlqc30:FA-10@m12'
    """
    text = spec.strip()
    if text.startswith("ctcae:"):
        return _parse_ctcae(spec, text, known_terms)
    if text.startswith("qlqc30:"):
        return _parse_qlqc30(spec, text)
    raise EndpointSyntaxError(
        f"endpoint {spec!r}: must start with 'ctcae:' or 'qlqc30:'"
    )


def _parse_ctcae(
    spec: str, text: str, known_terms: Container[str] | None
) -> CtcaeEndpoint:
    match = _CTCAE.match(text)
    if not match:
        raise EndpointSyntaxError(
            f"endpoint {spec!r}: expected ctcae:TERM[|TERM...]>=GRADE@DAYSd, "
            "e.g. ctcae:Pneumonitis>=2@365d"
        )
    terms = tuple(t.strip() for t in match["terms"].split("|"))
    if any(not t for t in terms):
        raise EndpointSyntaxError(f"endpoint {spec!r}: empty CTCAE term")
    grade = int(match["grade"])
    if not 1 <= grade <= _MAX_GRADE:
        raise EndpointSyntaxError(f"endpoint {spec!r}: grade must be 1-5, got {grade}")
    days = int(match["days"])
    if days <= 0:
        raise EndpointSyntaxError(f"endpoint {spec!r}: window must be > 0 days")
    if known_terms is not None:
        unknown = [t for t in terms if t not in known_terms]
        if unknown:
            raise EndpointSyntaxError(
                f"endpoint {spec!r}: unknown CTCAE term(s) {', '.join(unknown)}"
            )
    return CtcaeEndpoint(terms, grade, days)


def _parse_qlqc30(spec: str, text: str) -> QlqC30Endpoint:
    match = _QLQ.match(text)
    if not match:
        raise EndpointSyntaxError(
            f"endpoint {spec!r}: expected qlqc30:SCALE-POINTS@TIMEPOINT, "
            "e.g. qlqc30:FA-10@m12"
        )
    scale = match["scale"].upper()
    scale = _ALIASES.get(scale, scale)
    if scale not in QLQC30_SCALES:
        raise EndpointSyntaxError(
            f"endpoint {spec!r}: unknown QLQ-C30 scale {match['scale']!r} "
            f"(one of {', '.join(QLQC30_SCALES)})"
        )
    points = float(match["points"])
    if points <= 0:
        raise EndpointSyntaxError(f"endpoint {spec!r}: threshold must be > 0 points")
    timepoint = match["tp"]
    if timepoint.lower() == "baseline":
        raise EndpointSyntaxError(
            f"endpoint {spec!r}: the timepoint must be after baseline"
        )
    return QlqC30Endpoint(scale, points, timepoint)
