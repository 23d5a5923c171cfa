"""What an NTCP dataset extraction is asked for, and why a patient is left out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cohort.consent import TreatmentSite
from instruments.ctcae import load_catalogue
from ntcp.endpoints import CtcaeEndpoint, Endpoint, parse_endpoint
from ntcp.errors import NtcpError
from ntcp.survival import CensorAt

__all__ = [
    "COVARIATES",
    "DatasetError",
    "DatasetSpec",
    "Exclusion",
    "ExclusionReason",
    "check_spec",
]


#: Numeric covariates a logistic model may use (``baseline_score``: PROM endpoints).
COVARIATES = ("age_years", "sex_male", "baseline_score")


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


def check_spec(spec: DatasetSpec, endpoint: Endpoint) -> None:
    """Raise :class:`DatasetError` for a bad organ, option, site or CTCAE term."""
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
