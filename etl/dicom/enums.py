"""DICOM defined terms the ETL compares, as ``StrEnum``s normalised once when read.

Each enum holds the defined terms of one attribute (DICOM PS3.3). A header value is
normalised once, by the reader of the file, with :func:`normalise`: surrounding spaces
removed, upper case, and the enum member when the term is defined. Inputs of our
functions accept ``Enum | str`` (as highdicom does); a member compares equal to its
string, so stored values and JSON output are unchanged.

Unknown values (a vendor's nonstandard term) are read robustly, per field:

=========================  ===========================================================
``Modality``               kept as the cleaned string; the object is indexed, and used
                           only if a later step knows its modality.
``ContourGeometricType``   kept as the cleaned string; only ``CLOSED_PLANAR`` ROIs get
                           a DVH, others are reported as skipped (not an error).
``RTROIInterpretedType``   kept as the cleaned string (e.g. ``ITV``, which the target
                           rule knows by name); empty means none.
``DoseSummationType``      kept as the cleaned string; ``PLAN_SUM`` (a vendor's
                           ``MULTI_PLAN``) is a plan sum, anything else unknown is
                           treated as a plan dose.
``DoseType``               kept as the cleaned string (recorded, never computed on).
``DoseUnits``              an unknown unit is an error (:class:`~etl.errors.
                           DoseGridError`): a dose whose unit is not known cannot be
                           converted to Gy. ``CGY`` is accepted as a vendor's unit.
=========================  ===========================================================

References
----------
DICOM PS3.3 C.7.3.1 (Modality), C.8.8.6 (ContourGeometricType), C.8.8.8
(RTROIInterpretedType), C.8.8.3 (DoseUnits, DoseType, DoseSummationType).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

__all__ = [
    "IMAGE_MODALITIES",
    "PLAN_MODALITIES",
    "ContourGeometricType",
    "DoseSummationType",
    "DoseType",
    "DoseUnits",
    "Modality",
    "RTROIInterpretedType",
    "normalise",
]

E = TypeVar("E", bound=StrEnum)


class Modality(StrEnum):
    """Modality (0008,0060), the terms the ETL handles."""

    CT = "CT"
    MR = "MR"
    PT = "PT"
    RTSTRUCT = "RTSTRUCT"
    RTPLAN = "RTPLAN"
    RTIONPLAN = "RTIONPLAN"
    RTDOSE = "RTDOSE"
    RTIMAGE = "RTIMAGE"
    RTRECORD = "RTRECORD"
    REG = "REG"
    SEG = "SEG"


#: Image modalities whose slices a structure set may reference.
IMAGE_MODALITIES = frozenset({Modality.CT, Modality.MR, Modality.PT})
#: Modalities of RT plans (photon/electron and ion).
PLAN_MODALITIES = frozenset({Modality.RTPLAN, Modality.RTIONPLAN})


class ContourGeometricType(StrEnum):
    """Contour Geometric Type (3006,0042)."""

    POINT = "POINT"
    OPEN_PLANAR = "OPEN_PLANAR"
    OPEN_NONPLANAR = "OPEN_NONPLANAR"
    CLOSED_PLANAR = "CLOSED_PLANAR"


class RTROIInterpretedType(StrEnum):
    """RT ROI Interpreted Type (3006,00A4)."""

    EXTERNAL = "EXTERNAL"
    PTV = "PTV"
    CTV = "CTV"
    GTV = "GTV"
    TREATED_VOLUME = "TREATED_VOLUME"
    IRRAD_VOLUME = "IRRAD_VOLUME"
    BOLUS = "BOLUS"
    AVOIDANCE = "AVOIDANCE"
    ORGAN = "ORGAN"
    MARKER = "MARKER"
    REGISTRATION = "REGISTRATION"
    ISOCENTER = "ISOCENTER"
    CONTRAST_AGENT = "CONTRAST_AGENT"
    CAVITY = "CAVITY"
    BRACHY_CHANNEL = "BRACHY_CHANNEL"
    BRACHY_ACCESSORY = "BRACHY_ACCESSORY"
    BRACHY_SRC_APP = "BRACHY_SRC_APP"
    BRACHY_CHNL_SHLD = "BRACHY_CHNL_SHLD"
    SUPPORT = "SUPPORT"
    FIXATION = "FIXATION"
    DOSE_REGION = "DOSE_REGION"
    CONTROL = "CONTROL"
    DOSE_MEASUREMENT = "DOSE_MEASUREMENT"


class DoseSummationType(StrEnum):
    """Dose Summation Type (3004,000A)."""

    PLAN = "PLAN"
    MULTI_PLAN = "MULTI_PLAN"
    FRACTION = "FRACTION"
    BEAM = "BEAM"
    BRACHY = "BRACHY"
    FRACTION_SESSION = "FRACTION_SESSION"
    BEAM_SESSION = "BEAM_SESSION"
    BRACHY_SESSION = "BRACHY_SESSION"
    CONTROL_POINT = "CONTROL_POINT"
    RECORD = "RECORD"


class DoseType(StrEnum):
    """Dose Type (3004,0004)."""

    PHYSICAL = "PHYSICAL"
    EFFECTIVE = "EFFECTIVE"
    ERROR = "ERROR"


class DoseUnits(StrEnum):
    """Dose Units (3004,0002); ``CGY`` is not a defined term but some vendors use it."""

    GY = "GY"
    RELATIVE = "RELATIVE"
    CGY = "CGY"


def normalise(kind: type[E], value: object) -> E | str:
    """Normalise a header value: the enum member if defined, else the cleaned string.

    Parameters
    ----------
    kind
        The enum of the attribute.
    value
        The value as read (``None`` and empty give ``""``).

    Returns
    -------
    E or str
        The member, or the stripped upper-case string of an unknown term.

    Examples
    --------
    >>> normalise(Modality, " rtdose ") is Modality.RTDOSE
    True
    >>> normalise(RTROIInterpretedType, "itv")
    'ITV'
    """
    text = "" if value is None else str(value).strip().upper()
    try:
        return kind(text)
    except ValueError:
        return text
