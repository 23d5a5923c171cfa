"""Pseudonymisation of DICOM objects per PS3.15 Table E.1-1 (2024b) with four options.

Applied: the Basic Application Level Confidentiality Profile with the options Retain
Longitudinal Temporal Information with Modified Dates (113107), Retain Patient
Characteristics (113108), Retain Device Identity (113109) and Clean Descriptors
(113105).

Keyed values (:mod:`etl.deid.keyed_values`, re-exported here as the public API): the
patient's pseudonym; the date offset, added to every DA and DT value at any depth (TM
values are kept: a whole-day shift leaves them valid); ``2.25.<UUIDv8 integer>`` for
every UID that is not a well-known DICOM UID, at any depth. A folder is de-identified
by :func:`etl.deid.folder.deidentify_folder`.
"""

from __future__ import annotations

import io
import os
import re
import zlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pydicom
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
from etl.deid.keyed_values import (
    date_offset_days,
    is_well_known_uid,
    pseudonym,
    remap_uid,
    shift_date,
    uid_remapper,
)
from etl.deid.keys import CentreKey
from etl.deid.table import TABLE_EDITION, DeidOption
from etl.errors import DeidRefusedError
from omop.private_files import write_private

__all__ = [
    "DeidOutcome",
    "DeidResult",
    "date_offset_days",
    "deidentify_bytes",
    "deidentify_dataset",
    "deidentify_file",
    "is_well_known_uid",
    "key_fingerprint_of",
    "pseudonym",
    "remap_uid",
    "shift_date",
    "write_atomic",
]

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


def key_fingerprint_of(data: bytes) -> str | None:
    """Return the rtcohort key fingerprint an encoded object carries, if any."""
    meta, body = split_file(data)
    implicit = _transfer_syntax(meta, body) == _IMPLICIT_LE
    found = top_level_values(body, implicit, lambda tag, _vr: tag == DEID_METHOD)
    if DEID_METHOD not in found:
        return None
    match = _FINGERPRINT_RE.search(found[DEID_METHOD][1].decode("latin-1"))
    return match.group(1) if match else None


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
    uid = uid_remapper(key)
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
