"""Values keyed by the centre key: pseudonym, per-patient date offset, replacement UIDs.

All are HMAC-SHA-512/256 under sub-keys of the centre key (:mod:`etl.deid.keys`):

- pseudonym: ``<CENTRE>-<26 base32 characters>`` (130 bits) of the patient identifier;
- date offset: one whole number of days per patient in the key's range (``[-182, -1]``
  for a key made with the default consortium bound, ``[-3650, -365]`` for a legacy key:
  :attr:`etl.deid.keys.CentreKey.date_offset_range_days`); the same offset serves
  DICOM, toxicity and PROM dates (:func:`shift_date`);
- UIDs: every UID that is not a well-known DICOM UID becomes ``2.25.<UUIDv8 integer>``,
  so references between objects and re-sends stay consistent.

These are the small API that consent, forms and clinical data use so that everything
meets on one person; :mod:`etl.deid.pseudonymise` re-exports them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache, lru_cache

from pydicom._uid_dict import UID_dictionary

from etl.deid.keys import CentreKey, hmac_512_256

__all__ = [
    "date_offset_days",
    "is_well_known_uid",
    "pseudonym",
    "remap_uid",
    "shift_date",
    "uid_remapper",
]

_PSEUDONYM_CHARS = 26  # 130 bits of base32


def pseudonym(key: CentreKey, patient_id: str) -> str:
    """Return the pseudonym of a patient: ``<CENTRE>-<26 base32 characters>``.

    HMAC-SHA-512/256 of the UTF-8 patient identifier (leading and trailing blanks
    removed) under the key's ``pseudonym/v1`` sub-key; the first 130 bits in RFC 4648
    base32. At most 47 characters (OMOP ``person_source_value`` holds 50).

    Examples
    --------
    >>> from etl.deid.keys import CentreKey
    >>> key = CentreKey("AMS01", bytes(32))
    >>> p = pseudonym(key, "123456")
    >>> p.startswith("AMS01-"), len(p), p == pseudonym(key, " 123456 ")
    (True, 32, True)
    """
    digest = hmac_512_256(_subkey(key, "pseudonym/v1"), patient_id.strip().encode())
    text = base64.b32encode(digest[:17]).decode("ascii")[:_PSEUDONYM_CHARS]
    return f"{key.centre}-{text}"


def date_offset_days(key: CentreKey, patient_id: str) -> int:
    """Return the patient's date offset in whole days, in the key's range.

    ``low + (first 8 bytes of HMAC(K_date-offset/v1, id)) mod (high - low + 1)`` with
    ``(low, high)`` = :attr:`etl.deid.keys.CentreKey.date_offset_range_days`: ``-n ..
    -1``
    for a key bounded to *n* days, ``-3650 .. -365`` for a legacy key.

    Examples
    --------
    >>> from etl.deid.keys import CentreKey
    >>> -182 <= date_offset_days(CentreKey("AMS01", bytes(32)), "123456") <= -1
    True
    """
    low, high = key.date_offset_range_days
    digest = hmac_512_256(_subkey(key, "date-offset/v1"), patient_id.strip().encode())
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


def shift_date(key: CentreKey, patient_id: str, day: date) -> date:
    """Shift a date of this patient (toxicity, PROM, consent) like the DICOM dates."""
    return day + timedelta(days=date_offset_days(key, patient_id))


def is_well_known_uid(uid: str) -> bool:
    """Return True for UIDs of the standard (pydicom's UID dictionary, DICOM root)."""
    return uid in UID_dictionary or uid.startswith("1.2.840.10008.")


def remap_uid(key: CentreKey, uid: str) -> str:
    """Return the replacement of `uid`: ``2.25.<int>`` of a UUIDv8 from its HMAC.

    Well-known DICOM UIDs (transfer syntaxes, SOP classes, coding schemes...) are
    returned unchanged.
    """
    if not uid or is_well_known_uid(uid):
        return uid
    return _remap(_subkey(key, "uid/v1"), uid)


def uid_remapper(key: CentreKey) -> Callable[[str], str]:
    """Return :func:`remap_uid` bound to ``key`` (the sub-key derived once)."""
    uid_key = _subkey(key, "uid/v1")

    def uid(value: str) -> str:
        return value if is_well_known_uid(value) else _remap(uid_key, value)

    return uid


@cache
def _subkey(key: CentreKey, label: str) -> bytes:
    return key.derive(label)


@lru_cache(maxsize=1 << 16)
def _remap(subkey: bytes, uid: str) -> str:
    raw = bytearray(hmac_512_256(subkey, uid.encode("ascii"))[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # UUID version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    return f"2.25.{int.from_bytes(raw, 'big')}"
