"""Quality checks of DICOM-RT data with stable reason codes (blocking or warning).

*Blocking* reasons send the object or dataset to quarantine (``etl.ingest.quarantine``);
*warnings* are stored with the loaded dataset. The codes are a contract: they appear
in ``rtcohort quarantine list``, in the import summary and in the database.

The checks here look at parsed headers and computed numbers only; the import pipeline
(``etl.ingest.run``) calls them and decides what to do.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from etl.deid.codec import guess_implicit, split_file, top_level_values
from etl.errors import DeidRefusedError

__all__ = [
    "BLOCKING",
    "Finding",
    "Reason",
    "check_ct_series",
    "check_integrity",
    "check_prescription",
    "classify_deid_refusal",
    "is_blocking",
]


class Reason(StrEnum):
    """Why an object or dataset was held (blocking) or flagged (warning)."""

    # blocking
    UNREADABLE = "unreadable"
    NOT_DICOM = "not-dicom"
    NO_PATIENT_ID = "no-patient-id"
    NO_STRUCTURE_SET = "no-structure-set"
    DOSE_UNUSABLE = "dose-unusable"
    FRAME_OF_REFERENCE_MISMATCH = "frame-of-reference-mismatch"
    BURNED_IN_ANNOTATION = "burned-in-annotation"
    NO_CONSENT = "no-consent"
    NO_STUDY_DATE = "no-study-date"
    FOREIGN_KEY = "foreign-pseudonymisation-key"
    AWAITING_DOSE = "awaiting-dose"
    LOAD_FAILED = "load-failed"
    DOSE_IMPLAUSIBLE = "dose-implausible"
    NO_CONTOURS = "no-contours"
    BEAM_SET_INCOMPLETE = "beam-set-incomplete"
    # warnings
    CT_MISSING = "ct-missing"
    CT_INCOMPLETE = "ct-incomplete"
    OUTSIDE_DOSE_GRID = "outside-dose-grid"
    PRESCRIPTION_INCONSISTENT = "prescription-inconsistent"
    DUPLICATE_STRUCTURE = "duplicate-structure"
    STRUCTURE_UNUSABLE = "structure-unusable"
    PLAN_MISSING = "plan-missing"
    BEAM_DOSE_ONLY = "beam-dose-only"
    DOSE_HIGH = "dose-high"


#: Reasons that hold data in quarantine (the others are warnings).
BLOCKING = frozenset(
    {
        Reason.UNREADABLE,
        Reason.NOT_DICOM,
        Reason.NO_PATIENT_ID,
        Reason.NO_STRUCTURE_SET,
        Reason.DOSE_UNUSABLE,
        Reason.FRAME_OF_REFERENCE_MISMATCH,
        Reason.BURNED_IN_ANNOTATION,
        Reason.NO_CONSENT,
        Reason.NO_STUDY_DATE,
        Reason.FOREIGN_KEY,
        Reason.AWAITING_DOSE,
        Reason.BEAM_SET_INCOMPLETE,
        Reason.LOAD_FAILED,
        Reason.DOSE_IMPLAUSIBLE,
        Reason.NO_CONTOURS,
    }
)

#: Blocking reasons that are retried automatically by every import run: the data is
#: fine, something else (consent, a missing object) has to arrive first.
WAITING = frozenset(
    {
        Reason.NO_CONSENT,
        Reason.NO_STRUCTURE_SET,
        Reason.AWAITING_DOSE,
        Reason.BEAM_SET_INCOMPLETE,
    }
)


def is_blocking(reason: Reason | str) -> bool:
    """Whether a reason holds the data in quarantine."""
    return Reason(reason) in BLOCKING


@dataclass(frozen=True)
class Finding:
    """One finding: a reason code and a human-readable detail."""

    reason: Reason
    detail: str

    @property
    def blocking(self) -> bool:
        """Whether this finding holds the data."""
        return self.reason in BLOCKING

    def as_dict(self) -> dict[str, str]:
        """Return ``{"code": ..., "detail": ...}`` (stored as JSON with a dataset)."""
        return {"code": self.reason.value, "detail": self.detail}


_PIXEL_DATA = 0x7FE00010
_IMPLICIT_LE = "1.2.840.10008.1.2"
_DEFLATED = "1.2.840.10008.1.2.1.99"
_ENCAPSULATED_SYNTAX_PREFIXES = ("1.2.840.10008.1.2.4", "1.2.840.10008.1.2.5")


def check_integrity(data: bytes) -> Finding | None:
    """Check that an encoded object is DICOM and can be read whole.

    Every element is walked at the byte level (``etl.deid.codec``): a file whose
    elements or pixel data are cut short is *unreadable* and must never be taken as a
    new version of a good object with the same UID.

    Returns
    -------
    Finding or None
        ``not-dicom``, ``unreadable`` or None when the object reads whole.
    """
    return read_checked(data)[0]


def read_checked(data: bytes) -> tuple[Finding | None, pydicom.Dataset | None]:
    """Check an encoded object as :func:`check_integrity` and return it parsed.

    Returns
    -------
    tuple
        The finding (None when the object reads whole) and the parsed data set
        (None when there is a finding), so that the header index need not parse the
        object again.
    """
    has_prefix = (len(data) >= 132 and data[128:132] == b"DICM") or data[:4] == b"DICM"  # noqa: PLR2004
    if not has_prefix and data[:2] not in (b"\x08\x00", b"\x02\x00"):
        return Finding(
            Reason.NOT_DICOM, "no DICM prefix and no DICOM element at the start"
        ), None
    try:
        meta, body = split_file(data)
        syntax = meta.get(0x00020010, b"").decode("ascii", "replace").rstrip("\x00 ")
        if syntax != _DEFLATED:
            top_level_values(body, guess_implicit(body) if not syntax else
                             syntax == _IMPLICIT_LE, lambda _t, _vr: False)  # fmt: skip
    except DeidRefusedError as exc:
        if "not DICOM" in exc.reason and not has_prefix:
            return Finding(Reason.NOT_DICOM, exc.reason), None
        return Finding(Reason.UNREADABLE, exc.reason), None
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError,
            AttributeError, IndexError, OverflowError) as exc:  # fmt: skip
        reason = f"cannot be parsed ({type(exc).__name__})"
        return Finding(Reason.UNREADABLE, reason), None
    if "SOPClassUID" not in ds and "Modality" not in ds:
        return Finding(Reason.NOT_DICOM, "no SOP Class UID or Modality"), None
    if _PIXEL_DATA in ds:
        problem = _pixel_length_problem(ds)
        if problem:
            return Finding(Reason.UNREADABLE, problem), None
    return None, ds


def _pixel_length_problem(ds: pydicom.Dataset) -> str | None:
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    if syntax.startswith(_ENCAPSULATED_SYNTAX_PREFIXES):
        return None  # compressed: length not predictable from the header
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits = int(ds.BitsAllocated)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return "pixel data without a usable image header"
    expected = rows * cols * samples * frames * bits // 8
    actual = len(ds.PixelData)
    if actual < expected:
        return f"pixel data truncated ({actual} of {expected} bytes)"
    return None


def classify_deid_refusal(reason: str) -> Reason:
    """Map a pseudonymisation refusal (``etl.deid.pseudonymise``) to a reason code."""
    text = reason.lower()
    if "patientid" in text:
        return Reason.NO_PATIENT_ID
    if "burnedinannotation" in text or "burned" in text:
        return Reason.BURNED_IN_ANNOTATION
    if "another key" in text:
        return Reason.FOREIGN_KEY
    return Reason.UNREADABLE


def check_ct_series(
    slice_positions_mm: Sequence[float],
    referenced_uids: Sequence[str],
    present_uids: Sequence[str],
    *,
    gap_factor: float = 1.5,
) -> list[Finding]:
    """Check a CT series for slice gaps and referenced slices that are absent.

    Parameters
    ----------
    slice_positions_mm
        Position of every present slice along the slice normal.
    referenced_uids
        SOP Instance UIDs the structure set refers to (contour image sequence).
    present_uids
        SOP Instance UIDs of the slices that arrived.
    gap_factor
        A step larger than this times the median step is a gap.

    Examples
    --------
    >>> [f.reason.value for f in check_ct_series([0, 3, 6, 12], [], [])]
    ['ct-incomplete']
    """
    findings: list[Finding] = []
    if not slice_positions_mm and not present_uids:
        return [Finding(Reason.CT_MISSING, "no CT slice of the structure set arrived")]
    pos = np.sort(np.asarray(slice_positions_mm, dtype=np.float64))
    if pos.size >= 3:  # noqa: PLR2004
        steps = np.diff(pos)
        median = float(np.median(steps))
        gaps = int(np.sum(steps > gap_factor * median)) if median > 0 else 0
        if gaps:
            findings.append(
                Finding(
                    Reason.CT_INCOMPLETE,
                    f"{gaps} gap(s) in the CT slice positions (median step "
                    f"{median:.2f} mm)",
                )
            )
    missing = sorted(set(referenced_uids) - set(present_uids))
    if missing:
        findings.append(
            Finding(
                Reason.CT_INCOMPLETE,
                f"{len(missing)} CT slice(s) referenced by the structure set "
                "are absent",
            )
        )
    return findings


def check_prescription(
    target_d95_gy: float | None,
    prescription_gy: float | None,
    *,
    tolerance: float = 0.10,
) -> Finding | None:
    """Flag a target D95 more than ``tolerance`` (relative) off the prescription.

    Examples
    --------
    >>> check_prescription(50.0, 60.0).reason.value
    'prescription-inconsistent'
    >>> check_prescription(58.0, 60.0) is None
    True
    """
    if target_d95_gy is None or not prescription_gy or prescription_gy <= 0:
        return None
    deviation = abs(target_d95_gy - prescription_gy) / prescription_gy
    if deviation > tolerance:
        return Finding(
            Reason.PRESCRIPTION_INCONSISTENT,
            f"target D95 {target_d95_gy:.2f} Gy is {deviation:.0%} off the "
            f"prescription {prescription_gy:.2f} Gy",
        )
    return None
