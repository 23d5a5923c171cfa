"""Parameters of the national simulator and their validation (pure).

Every impossible value is refused with :class:`SimulationError` naming the option
(``--centres``, ``--completion``, ``--fractionation`` ...), before anything is written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cohort.errors import InvalidInputError

__all__ = [
    "DEFAULT_SCHEDULES",
    "SITES",
    "Schedule",
    "SimulationError",
    "SimulationParams",
    "parse_fractionation",
]

#: The four sites of the simulator (``instruments.shortlists.TreatmentSite`` values).
SITES: tuple[str, ...] = ("breast", "prostate", "head_neck", "lung")


class SimulationError(InvalidInputError):
    """Impossible simulator parameters (the message names the option)."""


@dataclass(frozen=True)
class Schedule:
    """A fractionation: total dose (Gy) in a number of fractions."""

    site: str
    dose_gy: float
    fractions: int

    @property
    def label(self) -> str:
        """``50Gy/25``."""
        return f"{self.dose_gy:g}Gy/{self.fractions}"

    @property
    def dose_per_fraction_gy(self) -> float:
        """Dose per fraction (Gy)."""
        return self.dose_gy / self.fractions


#: The schedules of each site (the first is the conventional one).
DEFAULT_SCHEDULES: dict[str, tuple[Schedule, ...]] = {
    "breast": (
        Schedule("breast", 50.0, 25),
        Schedule("breast", 40.05, 15),
        Schedule("breast", 26.0, 5),
    ),
    "prostate": (
        Schedule("prostate", 78.0, 39),
        Schedule("prostate", 60.0, 20),
        Schedule("prostate", 36.25, 5),
    ),
    "lung": (Schedule("lung", 60.0, 30), Schedule("lung", 54.0, 3)),
    "head_neck": (Schedule("head_neck", 70.0, 35),),
}

_FRACTIONATION = re.compile(r"^\s*([a-z_]+)\s*=\s*([0-9.eE+-]+)\s*/\s*(-?\d+)\s*$")


def parse_fractionation(text: str) -> Schedule:
    """Parse ``SITE=DOSE/FRACTIONS`` (``prostate=60/20``).

    Raises
    ------
    SimulationError
        Naming ``--fractionation`` and the reason.

    Examples
    --------
    >>> parse_fractionation("prostate=60/20").label
    '60Gy/20'
    """
    match = _FRACTIONATION.match(text)
    if match is None:
        raise SimulationError(
            f"--fractionation {text!r}: expected SITE=DOSE/FRACTIONS (prostate=60/20)"
        )
    site, dose_text, fx_text = match.groups()
    if site not in SITES:
        raise SimulationError(
            f"--fractionation {text!r}: unknown site (choose {', '.join(SITES)})"
        )
    dose, fractions = float(dose_text), int(fx_text)
    if fractions < 1:
        raise SimulationError(
            f"--fractionation {text!r}: the number of fractions must be at least 1"
        )
    if not math.isfinite(dose) or dose <= 0 or dose / fractions > 30:  # noqa: PLR2004
        raise SimulationError(
            f"--fractionation {text!r}: the dose must be positive and at most 30 Gy "
            "per fraction"
        )
    return Schedule(site, dose, fractions)


@dataclass(frozen=True)
class SimulationParams:
    """What ``rtcohort simulate`` was asked for.

    Attributes
    ----------
    centres, patients
        Number of centres and mean patients per centre (centres differ around it).
    years
        Length of the accrual period (RT starts spread over it, ending 2025-12-31).
    seed
        Seed of everything (``numpy.random.default_rng``).
    recruitment, completion
        Mean consent rate and mean PROM completion rate (fractions 0-1].
    sites
        Sites simulated (the case mix is renormalised over them).
    schedules
        Fractionations per site (replacing the defaults of a site when given).
    outlier_odds_ratio
        Toxicity odds ratio of the outlier centre (the funnel plot's outlier).
    """

    centres: int = 12
    patients: int = 2400
    years: float = 15.0
    seed: int = 1
    recruitment: float = 0.5
    completion: float = 0.6
    sites: tuple[str, ...] = SITES
    schedules: dict[str, tuple[Schedule, ...]] = field(
        default_factory=lambda: dict(DEFAULT_SCHEDULES)
    )
    outlier_odds_ratio: float = 3.0

    def __post_init__(self) -> None:
        """Validate (see :class:`SimulationError`)."""
        checks = (
            (self.centres >= 1, f"--centres {self.centres}: must be at least 1"),
            (self.centres <= 999, f"--centres {self.centres}: at most 999"),  # noqa: PLR2004
            (self.patients >= 1, f"--patients {self.patients}: must be at least 1"),
            (
                math.isfinite(self.years) and self.years > 0,
                f"--years {self.years}: must be positive",
            ),
            (
                0 < self.recruitment <= 1,
                f"--recruitment {self.recruitment}: must be a rate in (0, 1] "
                "(50% is 0.5)",
            ),
            (
                0 < self.completion <= 1,
                f"--completion {self.completion}: must be a rate in (0, 1] "
                "(60% is 0.6; above 100% is impossible)",
            ),
            (
                math.isfinite(self.outlier_odds_ratio) and self.outlier_odds_ratio > 0,
                f"--outlier-or {self.outlier_odds_ratio}: must be positive",
            ),
            (bool(self.sites), "--sites: at least one site"),
        )
        for ok, message in checks:
            if not ok:
                raise SimulationError(message)
        for site in self.sites:
            if site not in SITES:
                raise SimulationError(
                    f"--sites {site!r}: unknown site (choose {', '.join(SITES)})"
                )
            if not self.schedules.get(site):
                raise SimulationError(f"--fractionation: no schedule for {site}")
        for site, schedules in self.schedules.items():
            for s in schedules:
                if s.fractions < 1 or s.dose_gy <= 0:
                    raise SimulationError(
                        f"--fractionation {site}={s.dose_gy:g}/{s.fractions}: dose and "
                        "fractions must be positive"
                    )

    @classmethod
    def build(
        cls,
        *,
        fractionation: Iterable[str] = (),
        sites: str | None = None,
        **kw: object,
    ) -> SimulationParams:
        """Build from CLI-style values (``fractionation`` texts, ``sites`` a list)."""
        schedules = dict(DEFAULT_SCHEDULES)
        given: dict[str, list[Schedule]] = {}
        for text in fractionation:
            s = parse_fractionation(text)
            given.setdefault(s.site, []).append(s)
        schedules.update({k: tuple(v) for k, v in given.items()})
        chosen = (
            tuple(p.strip() for p in sites.split(",") if p.strip()) if sites else SITES
        )
        return cls(sites=chosen, schedules=schedules, **kw)  # type: ignore[arg-type]
