"""Pseudonymisation of DICOM objects per PS3.15 Table E.1-1 (2024b) with four options.

Applied: the Basic Application Level Confidentiality Profile with the options Retain
Longitudinal Temporal Information with Modified Dates (113107), Retain Patient
Characteristics (113108), Retain Device Identity (113109) and Clean Descriptors
(113105).

Keyed values (all HMAC-SHA-512/256 under sub-keys of the centre key, see
:mod:`etl.deid.keys`):

- pseudonym: ``<CENTRE>-<26 base32 characters>`` (130 bits) of the patient identifier;
- date offset: one whole number of days per patient in the key's range (``[-182, -1]``
  for a key made with the default consortium bound, ``[-3650, -365]`` for a legacy key:
  :attr:`etl.deid.keys.CentreKey.date_offset_range_days`), added to every DA and DT
  value
  at any depth (TM values are kept: a whole-day shift leaves them
  valid); the same offset serves toxicity and PROM dates (:func:`shift_date`);
- UIDs: every UID that is not a well-known DICOM UID becomes ``2.25.<UUIDv8 integer>``
  at any depth, so references between objects and re-sends stay consistent.

The public helpers :func:`pseudonym` and :func:`date_offset_days` are the small API that
consent, forms and clinical data use so that everything meets on one person.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import cache, lru_cache
from pathlib import Path

import pydicom
from pydicom._uid_dict import UID_dictionary
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset

from etl.deid import policy as pol
from etl.deid.age import STUDY_DATE, age_element
from etl.deid.codec import (
    Policy,
    build_file_meta,
    encode_element,
    guess_implicit,
    split_file,
    top_level_values,
    transform,
)
from etl.deid.keys import CentreKey, hmac_512_256
from etl.deid.table import TABLE_EDITION, DeidOption
from etl.errors import DeidRefusedError
from omop.private_files import write_private

__all__ = [
    "DeidOutcome",
    "DeidReport",
    "DeidResult",
    "date_offset_days",
    "deidentify_bytes",
    "deidentify_dataset",
    "deidentify_file",
    "deidentify_folder",
    "is_well_known_uid",
    "key_fingerprint_of",
    "pseudonym",
    "remap_uid",
    "shift_date",
]

_PSEUDONYM_CHARS = 26  # 130 bits of base32
_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_DEFLATED = "1.2.840.10008.1.2.1.99"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_TRANSFER_SYNTAX_TAG = 0x00020010
SOP_CLASS_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID = 0x00080016, 0x00080018, 0x0020000D
SPECIFIC_CHARSET, BURNED_IN_ANNOTATION = 0x00080005, 0x00280301
PATIENT_IDENTITY_REMOVED, DEID_METHOD, DEID_METHOD_CODES = (
    0x00120062,
    0x00120063,
    0x00120064,
)
LONG_TEMPORAL_MODIFIED = 0x00280303
_FINGERPRINT_RE = re.compile(r"rtcohort key ([0-9a-f]{16})")

#: CID 7050 codes written in DeidentificationMethodCodeSequence.
METHOD_CODES: tuple[tuple[str, str], ...] = (
    ("113100", "Basic Application Confidentiality Profile"),
    (
        DeidOption.RETAIN_LONG_MODIFIED_DATES.value,
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    (
        DeidOption.RETAIN_PATIENT_CHARACTERISTICS.value,
        "Retain Patient Characteristics Option",
    ),
    (DeidOption.RETAIN_DEVICE_IDENTITY.value, "Retain Device Identity Option"),
    (DeidOption.CLEAN_DESCRIPTORS.value, "Clean Descriptors Option"),
)


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


def key_fingerprint_of(data: bytes) -> str | None:
    """Return the rtcohort key fingerprint an encoded object carries, if any."""
    meta, body = split_file(data)
    implicit = _transfer_syntax(meta, body) == _IMPLICIT_LE
    found = top_level_values(body, implicit, lambda tag, _vr: tag == DEID_METHOD)
    if DEID_METHOD not in found:
        return None
    match = _FINGERPRINT_RE.search(found[DEID_METHOD][1].decode("latin-1"))
    return match.group(1) if match else None


@cache
def _subkey(key: CentreKey, label: str) -> bytes:
    return key.derive(label)


@lru_cache(maxsize=1 << 16)
def _remap(subkey: bytes, uid: str) -> str:
    raw = bytearray(hmac_512_256(subkey, uid.encode("ascii"))[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # UUID version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    return f"2.25.{int.from_bytes(raw, 'big')}"


class DeidOutcome(StrEnum):
    """What happened to one object."""

    PSEUDONYMISED = "pseudonymised"
    ALREADY_DONE = "already-pseudonymised"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class DeidResult:
    """Outcome of de-identifying one object.

    Attributes
    ----------
    outcome : DeidOutcome
    data : bytes or None
        The Part-10 encoding to store (None when quarantined).
    reason : str
        Why it was quarantined (empty otherwise).
    sop_instance_uid, study_instance_uid : str
        UIDs of the *output* object (empty when quarantined).
    pseudonym : str
        The patient's pseudonym (empty when quarantined or passed through).
    """

    outcome: DeidOutcome
    data: bytes | None
    reason: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    pseudonym: str = ""


# -- one object ---------------------------------------------------------------------


def _transfer_syntax(meta: dict[int, bytes], body: bytes | memoryview) -> str:
    if _TRANSFER_SYNTAX_TAG in meta:
        return meta[_TRANSFER_SYNTAX_TAG].decode("ascii", "replace").rstrip("\x00 ")
    return _IMPLICIT_LE if guess_implicit(body) else _EXPLICIT_LE


def _text(values: dict[int, tuple[str, bytes]], tag: int) -> str:
    return (
        values[tag][1].decode("latin-1").rstrip("\x00 ").strip()
        if tag in values
        else ""
    )


def _markers(key: CentreKey, implicit: bool) -> dict[int, bytes]:
    """Encode PatientIdentityRemoved, DeidentificationMethod(+Code Sequence), LTIM."""

    def element(tag: int, vr: str, text: str) -> bytes:
        raw = text.encode("ascii")
        return encode_element(tag, vr, raw + b" " if len(raw) % 2 else raw, implicit)

    items = []
    for code, meaning in METHOD_CODES:
        content = (
            element(0x00080100, "SH", code)
            + element(0x00080102, "SH", "DCM")
            + element(0x00080104, "LO", meaning)
        )
        items.append(encode_element(0xFFFEE000, "", content, True))
    codes = " ".join(code for code, _ in METHOD_CODES)
    method = "\\".join(
        (
            f"rtcohort PS3.15 Table E.1-1 {TABLE_EDITION}",
            f"CID 7050 {codes}",
            f"rtcohort key {key.fingerprint}",
        )
    )
    return {
        PATIENT_IDENTITY_REMOVED: element(PATIENT_IDENTITY_REMOVED, "CS", "YES"),
        DEID_METHOD: element(DEID_METHOD, "LO", method),
        DEID_METHOD_CODES: encode_element(
            DEID_METHOD_CODES, "SQ", b"".join(items), implicit
        ),
        LONG_TEMPORAL_MODIFIED: element(LONG_TEMPORAL_MODIFIED, "CS", "MODIFIED"),
    }


def deidentify_bytes(
    data: bytes,
    key: CentreKey,
    *,
    accept_fingerprints: frozenset[str] = frozenset(),
) -> DeidResult:
    """De-identify one encoded object (Part-10 file or bare data set).

    Parameters
    ----------
    data : bytes
        The object as read from disk or received over the network.
    key : CentreKey
        The centre key.
    accept_fingerprints : frozenset of str
        Fingerprints of other keys whose output may be pseudonymised again (only
        audit copies use this); any other foreign fingerprint is refused.

    Returns
    -------
    DeidResult
        Pseudonymised, passed through (already carries this key's fingerprint) or
        quarantined with a reason (never raises for bad input).
    """
    try:
        return _deidentify(data, key, accept_fingerprints)
    except DeidRefusedError as exc:
        return DeidResult(DeidOutcome.QUARANTINED, None, exc.reason)
    except (UnicodeError, LookupError, zlib.error) as exc:
        reason = f"undecodable DICOM data: {type(exc).__name__}"
        return DeidResult(DeidOutcome.QUARANTINED, None, reason)


def _deidentify(data: bytes, key: CentreKey, accept: frozenset[str]) -> DeidResult:
    meta, body = split_file(data)
    syntax = _transfer_syntax(meta, body)
    if syntax == _BIG_ENDIAN:
        raise DeidRefusedError("Explicit VR Big Endian (retired) is not supported")
    if syntax == _DEFLATED:
        body, syntax = memoryview(zlib.decompress(body, -15)), _EXPLICIT_LE
    implicit = syntax == _IMPLICIT_LE
    values = top_level_values(
        body,
        implicit,
        lambda tag, vr: (
            tag
            in (SOP_CLASS_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID, SPECIFIC_CHARSET)
            or tag in (BURNED_IN_ANNOTATION, DEID_METHOD, STUDY_DATE)
            or pol.is_identifier(tag, vr)
        ),
    )
    match = _FINGERPRINT_RE.search(_text(values, DEID_METHOD))
    if match and match.group(1) == key.fingerprint:
        return DeidResult(
            DeidOutcome.ALREADY_DONE,
            data,
            sop_instance_uid=_text(values, SOP_INSTANCE_UID),
            study_instance_uid=_text(values, STUDY_INSTANCE_UID),
        )
    if match and match.group(1) not in accept:
        msg = f"already pseudonymised with another key (fingerprint {match.group(1)})"
        raise DeidRefusedError(msg)
    if _text(values, BURNED_IN_ANNOTATION).upper() == "YES":
        raise DeidRefusedError("BurnedInAnnotation is YES: identifiers in the pixels")
    patient_id = _text(values, pol.PATIENT_ID)
    if not patient_id:
        raise DeidRefusedError("no PatientID: a pseudonym cannot be derived")
    sop_class, sop_instance = (
        _text(values, SOP_CLASS_UID),
        _text(values, SOP_INSTANCE_UID),
    )
    if not sop_class or not sop_instance:
        raise DeidRefusedError("no SOPClassUID or SOPInstanceUID")
    charset = [v.strip() for v in _text(values, SPECIFIC_CHARSET).split("\\")]
    encodings = convert_encodings([v for v in charset if v] or None)
    identifiers = {t: v for t, v in values.items() if pol.is_identifier(t, v[0])}
    offset = date_offset_days(key, patient_id)
    name = pseudonym(key, patient_id)
    uid_key = _subkey(key, "uid/v1")

    def uid(value: str) -> str:
        return value if is_well_known_uid(value) else _remap(uid_key, value)

    policy = Policy(
        op_for=pol.op_for,
        uid=uid,
        date=lambda value: pol.shift_text(value, offset),
        pseudonym=lambda _value: name,
        clean=pol.make_cleaner(pol.scrub_terms(identifiers, encodings), encodings),
        dummy=pol.dummy_value,
        extra=_markers(key, implicit) | age_element(values, implicit),
    )
    new_instance = uid(sop_instance)
    out = transform(
        body, implicit, policy, build_file_meta(sop_class, new_instance, syntax)
    )
    return DeidResult(
        DeidOutcome.PSEUDONYMISED,
        out,
        sop_instance_uid=new_instance,
        study_instance_uid=uid(_text(values, STUDY_INSTANCE_UID)),
        pseudonym=name,
    )


def deidentify_dataset(ds: Dataset, key: CentreKey) -> Dataset:
    """Return a de-identified copy of a pydicom data set.

    Raises
    ------
    DeidRefusedError
        If the object must be quarantined (the reason is in the message).
    """
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
    result = deidentify_bytes(buffer.getvalue(), key)
    if result.data is None:
        raise DeidRefusedError(result.reason)
    return pydicom.dcmread(io.BytesIO(result.data))


def deidentify_file(
    source: str | os.PathLike[str], target: str | os.PathLike[str], key: CentreKey
) -> DeidResult:
    """De-identify one file; write the output (atomically) only if not quarantined."""
    result = deidentify_bytes(Path(source).read_bytes(), key)
    if result.data is not None:
        write_atomic(Path(target), result.data)
    return result


def write_atomic(target: Path, data: bytes) -> None:
    """Write `data` to `target` through a temporary file in the same folder + rename.

    The file is created 0600 and missing folders 0700 (:mod:`omop.private_files`):
    pseudonymised data and files held as received are for the owner only.
    """
    write_private(target, data)


# -- a folder -----------------------------------------------------------------------


@dataclass
class DeidReport:
    """Counts and quarantine reasons of a folder run (JSON-serialisable)."""

    centre: str
    key_fingerprint: str
    files: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    patients: int = 0
    quarantined: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        """Return the report as indented JSON (no identifiers: paths are relative)."""
        return json.dumps(self.__dict__, indent=2)


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            yield path


def deidentify_folder(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    key: CentreKey,
    *,
    quarantine: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DeidReport:
    """De-identify every file under `source` into `target`, keeping the folder layout.

    Files that are not DICOM or must not be pseudonymised are listed in the report with
    their reason and, when `quarantine` is given, copied there with a ``.reason.txt``.
    """
    root, out_root = Path(source), Path(target)
    paths = list(_files(root))
    report = DeidReport(key.centre, key.fingerprint, files=len(paths))
    names: set[str] = set()
    for index, path in enumerate(paths, 1):
        relative = path.relative_to(root)
        result = deidentify_bytes(path.read_bytes(), key)
        report.counts[result.outcome] = report.counts.get(result.outcome, 0) + 1
        if result.data is None:
            report.quarantined.append({"file": str(relative), "reason": result.reason})
            if quarantine is not None:
                held = Path(quarantine) / relative
                write_atomic(held, path.read_bytes())
                write_atomic(
                    held.with_name(held.name + ".reason.txt"), result.reason.encode()
                )
        else:
            write_atomic(out_root / relative, result.data)
            if result.pseudonym:
                names.add(result.pseudonym)
        if progress is not None:
            progress(index, len(paths))
    report.patients = len(names)
    return report
