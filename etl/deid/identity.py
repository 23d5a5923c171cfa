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
from dataclasses import dataclass

from etl.deid.keyed_values import date_offset_days, pseudonym
from etl.deid.keys import CentreKey

__all__ = ["PatientIdentity", "identify", "known_pseudonym"]


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
        The hospital identifier (blanks around it are ignored).

    Examples
    --------
    >>> key = CentreKey("AMS01", bytes(32))
    >>> who = identify(key, "123456")
    >>> who.pseudonym.startswith("AMS01-"), -3650 <= who.date_offset_days <= -365
    (True, True)
    """
    return PatientIdentity(
        pseudonym(key, patient_id), date_offset_days(key, patient_id)
    )


def known_pseudonym(value: str) -> PatientIdentity:
    """Return the identity of a patient named by pseudonym only (no offset).

    Examples
    --------
    >>> known_pseudonym(" AMS01-ABC ").pseudonym
    'AMS01-ABC'
    """
    return PatientIdentity(value.strip())
