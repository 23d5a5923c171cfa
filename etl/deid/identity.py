"""A patient's identity in the pseudonymised frame: pseudonym and date offset.

The one place where a hospital identifier becomes what the platform stores: the keyed
pseudonym and the per-patient date offset (both derived with the centre key by
:mod:`etl.deid.keyed_values`), so consent, follow-up, forms, imports and the DICOM meet
on the same
person and shift their dates alike. A patient named by a pseudonym alone has no known
offset: dates given with it are taken as already in the pseudonymised frame.
"""

from __future__ import annotations

import datetime
import io
import re
from dataclasses import dataclass

import pydicom
from pydicom.errors import InvalidDicomError

from etl.deid.keyed_values import date_offset_days, pseudonym
from etl.deid.keys import CentreKey
from etl.errors import PatientIdError

__all__ = [
    "PATIENT_ID_MAX_CHARS",
    "PatientIdentity",
    "check_patient_id",
    "check_pseudonym",
    "identify",
    "known_pseudonym",
    "raw_pseudonym",
]

#: Longest hospital identifier accepted (blanks around it removed).
PATIENT_ID_MAX_CHARS = 64
_PATIENT_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ._/:-]*[A-Za-z0-9])?")
_PSEUDONYM_BODY = re.compile(r"[A-Z2-7]{26}")


@dataclass(frozen=True)
class PatientIdentity:
    """A patient's pseudonym and, when derived from the identifier, date offset.

    Attributes
    ----------
    pseudonym : str
        ``<CENTRE>-<26 base32 characters>`` (PERSON.person_source_value).
    date_offset_days : int or None
        Days added to every real date of the patient; ``None`` when only the
        pseudonym is known (the offset is then not derivable without the identifier).
    """

    pseudonym: str
    date_offset_days: int | None = None

    def shift(self, day: datetime.date) -> datetime.date:
        """Move a real date into the pseudonymised frame (unchanged if no offset).

        Examples
        --------
        >>> PatientIdentity("AMS01-X", -400).shift(datetime.date(2025, 3, 1))
        datetime.date(2024, 1, 26)
        >>> known_pseudonym("AMS01-X").shift(datetime.date(2025, 3, 1))
        datetime.date(2025, 3, 1)
        """
        return day + datetime.timedelta(days=self.date_offset_days or 0)


def identify(key: CentreKey, patient_id: str) -> PatientIdentity:
    """Return the pseudonym and date offset of a hospital patient identifier.

    Parameters
    ----------
    key : CentreKey
        The centre's pseudonymisation key.
    patient_id : str
        The hospital identifier (blanks around it are ignored); checked by
        :func:`check_patient_id`.

    Raises
    ------
    PatientIdError
        Empty or malformed identifier, or a pseudonym of the centre given as one.

    Examples
    --------
    >>> key = CentreKey("AMS01", bytes(32))
    >>> who = identify(key, "123456")
    >>> who.pseudonym.startswith("AMS01-"), who.date_offset_days < 0
    (True, True)
    """
    check_patient_id(patient_id, centre=key.centre)
    return PatientIdentity(
        pseudonym(key, patient_id), date_offset_days(key, patient_id)
    )


def check_patient_id(patient_id: str, *, centre: str | None = None) -> None:
    """Refuse an empty or malformed hospital identifier (never repeated in messages).

    Accepted: 1 to :data:`PATIENT_ID_MAX_CHARS` letters, digits, and inner spaces,
    ``. _ / : -`` (blanks around it ignored). With ``centre``, a pseudonym of that
    centre is refused too: pseudonymising it again would make a new person.

    Examples
    --------
    >>> check_patient_id(" 123456 ")
    >>> check_patient_id("")
    Traceback (most recent call last):
    ...
    etl.errors.PatientIdError: patient id: empty
    """
    text = patient_id.strip()
    if not text:
        raise PatientIdError("patient id: empty")
    if len(text) > PATIENT_ID_MAX_CHARS:
        raise PatientIdError(
            f"patient id: {len(text)} characters (at most {PATIENT_ID_MAX_CHARS})"
        )
    if not _PATIENT_ID.fullmatch(text):
        raise PatientIdError(
            "patient id: malformed (letters, digits, inner spaces and . _ / : - only)"
        )
    prefix = f"{centre}-"
    if (
        centre
        and text.startswith(prefix)
        and _PSEUDONYM_BODY.fullmatch(text.removeprefix(prefix))
    ):
        raise PatientIdError(
            "patient id: is a pseudonym of this centre (use --pseudonym)"
        )


def check_pseudonym(value: str, centre: str) -> None:
    """Refuse a pseudonym that is not ``<centre>-...`` of the centre it is recorded at.

    Examples
    --------
    >>> check_pseudonym("AMS01-ABC", "AMS01")
    >>> check_pseudonym("OTH-ABC", "AMS01")
    Traceback (most recent call last):
    ...
    etl.errors.PatientIdError: pseudonym: not of centre AMS01 (must start with AMS01-)
    """
    prefix = f"{centre}-"
    body = value.removeprefix(prefix)
    if not value.startswith(prefix) or not _PATIENT_ID.fullmatch(body):
        raise PatientIdError(
            f"pseudonym: not of centre {centre} (must start with {prefix})"
        )


def known_pseudonym(value: str) -> PatientIdentity:
    """Return the identity of a patient named by pseudonym only (no offset).

    Examples
    --------
    >>> known_pseudonym(" AMS01-ABC ").pseudonym
    'AMS01-ABC'
    """
    return PatientIdentity(value.strip())


def raw_pseudonym(data: bytes, key: CentreKey | None) -> str | None:
    """Return the keyed pseudonym of the PatientID of a file held as received.

    Lets erasure find a raw held or rejected file by the person's pseudonym; the
    PatientID itself is never returned. An object already pseudonymised with this
    key names its pseudonym as PatientID and returns it. None without a key, or when
    the bytes are not readable DICOM or have no valid PatientID.
    """
    if key is None:
        return None
    try:
        ds = pydicom.dcmread(
            io.BytesIO(data), stop_before_pixels=True, specific_tags=["PatientID"]
        )
        patient_id = str(ds.get("PatientID", "") or "").strip()
    except (InvalidDicomError, ValueError, TypeError, OSError, AttributeError):
        return None  # not DICOM or broken: nothing to name
    if re.fullmatch(rf"{re.escape(key.centre)}-[A-Z2-7]{{26}}", patient_id):
        return patient_id  # already this centre's pseudonym (pseudonymised bytes)
    try:
        check_patient_id(patient_id, centre=key.centre)
    except PatientIdError:
        return None  # no usable PatientID
    return pseudonym(key, patient_id)
