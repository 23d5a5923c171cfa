"""The patient's age at the study, captured while the real dates are still known.

De-identification shifts every date by the patient's offset and empties the birth date
(:mod:`etl.deid.pseudonymise`), so an age computed afterwards would be off by up to the
offset. At the pseudonymisation step the unshifted StudyDate and PatientBirthDate are
both at hand: :func:`age_element` turns them into Patient's Age (0010,1010), a whole
number of years (``nnnY``), which PS3.15 keeps under the Retain Patient Characteristics
option (113108). Only that number leaves the centre: the birth date is emptied as
before. Without a usable birth date the object's own Patient's Age (if any) is kept
unchanged.

The loader reads it back with :func:`age_years_of` as the age at the start of the RT
course (the course starts on the dose's StudyDate, :func:`etl.store.course.study_day`).
"""

from __future__ import annotations

import datetime
import re

from etl.deid.codec import encode_element
from etl.deid.policy import PATIENT_BIRTH_DATE

__all__ = [
    "PATIENT_AGE",
    "STUDY_DATE",
    "age_element",
    "age_in_years",
    "age_years_of",
    "dicom_age",
]

PATIENT_AGE, STUDY_DATE = 0x00101010, 0x00080020
_MAX_YEARS = 999  # AS holds three digits
_AGE_RE = re.compile(r"(\d{3})([DWMY])")
_DAYS_PER_UNIT = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}


def age_in_years(birth: datetime.date, on: datetime.date) -> int:
    """Return the completed years of life on a day (the age on a birthday counts).

    Examples
    --------
    >>> age_in_years(datetime.date(1960, 5, 17), datetime.date(2024, 5, 16))
    63
    >>> age_in_years(datetime.date(1960, 5, 17), datetime.date(2024, 5, 17))
    64
    """
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def dicom_age(years: int) -> str:
    """Return an age in whole years as a DICOM Age String (AS), e.g. ``064Y``.

    Examples
    --------
    >>> dicom_age(64)
    '064Y'
    """
    if not 0 <= years <= _MAX_YEARS:
        raise ValueError(f"age {years} years is outside 0-{_MAX_YEARS}")
    return f"{years:03d}Y"


def age_years_of(text: str) -> int | None:
    """Return the whole years of a DICOM Age String; None when empty or invalid.

    Days, weeks and months are converted to completed years.

    Examples
    --------
    >>> age_years_of("064Y"), age_years_of("018M"), age_years_of(""), age_years_of("64")
    (64, 1, None, None)
    """
    match = _AGE_RE.fullmatch(text.strip())
    if match is None:
        return None
    number, unit = int(match.group(1)), match.group(2)
    if unit == "Y":
        return number
    return int(number * _DAYS_PER_UNIT[unit] // _DAYS_PER_UNIT["Y"])


def _da(raw: bytes) -> datetime.date | None:
    text = raw.decode("latin-1").rstrip("\x00 ").strip()
    try:
        return (
            datetime.datetime.strptime(text[:8], "%Y%m%d")
            .replace(tzinfo=datetime.UTC)
            .date()
        )
    except ValueError:
        return None


def age_element(
    values: dict[int, tuple[str, bytes]], implicit: bool
) -> dict[int, bytes]:
    """Return ``{PatientAge: encoded element}`` from the unshifted dates, or ``{}``.

    Parameters
    ----------
    values
        Top-level ``tag -> (VR, raw value)`` of the object *before* de-identification;
        it must hold StudyDate and PatientBirthDate when present.
    implicit
        Whether the output is implicit VR.

    Returns
    -------
    dict
        Empty when either date is missing or invalid or the birth lies after the
        study (the object's own Patient's Age, if any, then passes as kept).
    """
    birth = _da(values.get(PATIENT_BIRTH_DATE, ("", b""))[1])
    study = _da(values.get(STUDY_DATE, ("", b""))[1])
    if birth is None or study is None or birth > study:
        return {}
    years = age_in_years(birth, study)
    if years > _MAX_YEARS:
        return {}
    return {
        PATIENT_AGE: encode_element(
            PATIENT_AGE, "AS", dicom_age(years).encode(), implicit
        )
    }
