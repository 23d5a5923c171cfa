"""Byte-level walk of a little-endian DICOM data set that applies de-identification.

pydicom builds a Python object per element and per sequence item; on a structure set
with thousands of contours that costs more than the de-identification itself, and
walking a pydicom ``Dataset`` with ``walk``/``iterall`` decodes every ContourData value.
This module reads element headers with :mod:`struct`, copies every value it does not
change as raw bytes (ContourData, pixel data, dose grids are never decoded) and
re-encodes only the values it changes. Sequences and items are written with defined
lengths. Implicit and explicit VR Little Endian (and every encapsulated transfer syntax,
which are explicit VR Little Endian) are handled; callers convert deflated data first.

The policy (which action applies to which tag, how a UID, date or name is replaced) is
passed in as a :class:`Policy`; this module knows the encoding only.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from pydicom.datadict import dictionary_VR

from etl.errors import DeidRefusedError

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "Op",
    "Policy",
    "build_file_meta",
    "encode_element",
    "guess_implicit",
    "split_file",
    "top_level_values",
    "transform",
]

#: rtcohort's implementation class UID (a UUID-derived 2.25 UID) written in file meta.
IMPLEMENTATION_CLASS_UID = "2.25.84903359473944493947337924238155925165"
_IMPLEMENTATION_VERSION = b"RTCOHORT_01"

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD
_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
_VALID_VRS = _LONG_VRS | frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN"}
    | {"SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"}
)
_VR_NAMES = {vr.encode("ascii"): vr for vr in _VALID_VRS}
_ITEM_GROUP = 0xFFFE
_PREAMBLE = 128
_META_GROUP = 0x0002
_MIN_ELEMENT = 8
_PIXEL_GROUP = 0x7FE0
_PADDING_GROUP = 0xFFFC
Buffer = bytes | memoryview
_HDR = struct.Struct("<HHI")
_HDR_EXPLICIT_SHORT = struct.Struct("<HH2sH")
_HDR_EXPLICIT_LONG = struct.Struct("<HH2sHI")
_U32 = struct.Struct("<I")
_U16X2 = struct.Struct("<HH")
_U16 = struct.Struct("<H")


class Op:
    """What to do with one element (small ints for speed)."""

    KEEP = 0
    DROP = 1
    EMPTY = 2
    DUMMY = 3
    UID = 4
    DATE = 5
    CLEAN = 6
    RECURSE = 7
    PSEUDONYM = 8


@dataclass
class Policy:
    """The decisions the walk applies to one object.

    Built by :mod:`etl.deid.pseudonymise`.

    Attributes
    ----------
    op_for : Callable[[int, str], int]
        (tag, VR) -> :class:`Op`.
    uid : Callable[[str], str]
        Maps one UID.
    date : Callable[[str], str]
        Shifts one DA or DT value; returns ``""`` if unparseable.
    pseudonym : Callable[[str], str]
        Patient identifier -> pseudonym.
    clean : Callable[[bytes, str], bytes]
        (raw text value, VR) -> cleaned raw value.
    dummy : Callable[[str, int], bytes]
        (VR, original length) -> dummy value.
    extra : dict[int, bytes]
        Encoded top-level elements to add or replace (tag -> full element bytes).
    """

    op_for: Callable[[int, str], int]
    uid: Callable[[str], str]
    date: Callable[[str], str]
    pseudonym: Callable[[str], str]
    clean: Callable[[bytes, str], bytes]
    dummy: Callable[[str, int], bytes]
    extra: dict[int, bytes] = field(default_factory=dict)


@cache
def _dict_vr(tag: int) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    if vr == "OB or OW":
        return "OW"
    if " or " in vr:
        return vr[:2]
    return vr


def _truncated(pos: int) -> DeidRefusedError:
    return DeidRefusedError(f"truncated or malformed DICOM data at byte {pos}")


def _header(buf: Buffer, pos: int, implicit: bool) -> tuple[int, str, int, int]:
    """Return (tag, VR, length, value start) of the element at `pos`."""
    if pos + 8 > len(buf):
        raise _truncated(pos)
    group, elem, vr_raw, short = _HDR_EXPLICIT_SHORT.unpack_from(buf, pos)
    tag = (group << 16) | elem
    if group == _ITEM_GROUP:
        return tag, "", _U32.unpack_from(buf, pos + 4)[0], pos + 8
    if implicit:
        return tag, _dict_vr(tag), _U32.unpack_from(buf, pos + 4)[0], pos + 8
    vr = _VR_NAMES.get(vr_raw)
    if vr is None:
        msg = f"invalid VR {vr_raw!r} at byte {pos}: not DICOM or damaged"
        raise DeidRefusedError(msg)
    if vr in _LONG_VRS:
        if pos + 12 > len(buf):
            raise _truncated(pos)
        return tag, vr, _U32.unpack_from(buf, pos + 8)[0], pos + 12
    return tag, vr, short, pos + 8


def _skip_fragments(buf: Buffer, pos: int) -> int:
    """Return the position after an encapsulated (fragment) sequence starting at pos."""
    while True:
        tag, _vr, length, vstart = _header(buf, pos, True)
        if tag == _SEQ_END:
            return vstart
        if tag != _ITEM or length == _UNDEFINED:
            raise _truncated(pos)
        pos = vstart + length


def _skip_items(buf: Buffer, pos: int, implicit: bool) -> int:
    """Return the position after an undefined-length sequence value starting at pos."""
    while True:
        tag, _vr, length, vstart = _header(buf, pos, True)
        if tag == _SEQ_END:
            return vstart
        if tag != _ITEM:
            raise _truncated(pos)
        if length != _UNDEFINED:
            pos = vstart + length
            continue
        pos = vstart
        while True:
            etag, evr, elen, evstart = _header(buf, pos, implicit)
            if etag == _ITEM_END:
                pos = evstart
                break
            pos = _value_end(buf, evstart, elen, evr, implicit)


def _value_end(buf: Buffer, vstart: int, length: int, vr: str, implicit: bool) -> int:
    if length != _UNDEFINED:
        end = vstart + length
        if end > len(buf):
            raise _truncated(vstart)
        return end
    if vr in ("SQ", "UN") or (implicit and vr not in ("OB", "OW")):
        return _skip_items(buf, vstart, implicit or vr == "UN")
    return _skip_fragments(buf, vstart)


def encode_element(tag: int, vr: str, value: bytes, implicit: bool) -> bytes:
    """Encode one element (value already padded to even length)."""
    group, elem = tag >> 16, tag & 0xFFFF
    if implicit:
        return _HDR.pack(group, elem, len(value)) + value
    if vr in _LONG_VRS:
        return _HDR_EXPLICIT_LONG.pack(group, elem, vr.encode(), 0, len(value)) + value
    return _HDR_EXPLICIT_SHORT.pack(group, elem, vr.encode(), len(value)) + value


def _pad(value: bytes, vr: str) -> bytes:
    if len(value) % 2:
        return value + (b"\x00" if vr == "UI" else b" ")
    return value


def _map_values(raw: bytes, func: Callable[[str], str], vr: str) -> bytes:
    text = raw.decode("latin-1").rstrip("\x00 ")
    if not text:
        return raw
    out = "\\".join(func(v.strip()) if v.strip() else "" for v in text.split("\\"))
    return _pad(out.encode("ascii"), vr)


def _map_dates(raw: bytes, func: Callable[[str], str], vr: str) -> bytes:
    if vr == "DA":
        text = raw.decode("latin-1").rstrip("\x00 ")

        def one(value: str) -> str:
            # A DA range (query form) shifts both ends.
            return "-".join(func(p) if p else "" for p in value.split("-"))

        out = "\\".join(one(v.strip()) for v in text.split("\\"))
        return _pad(out.encode("ascii"), vr)
    return _map_values(raw, func, vr)


def _sequence(
    buf: Buffer, vstart: int, length: int, implicit: bool, policy: Policy
) -> tuple[bytes, int]:
    """Transform a sequence value; return (new value with defined lengths, end)."""
    items: list[bytes] = []
    pos = vstart
    end = vstart + length if length != _UNDEFINED else len(buf)
    if end > len(buf):
        raise _truncated(vstart)
    while pos < end:
        tag, _vr, ilen, istart = _header(buf, pos, True)
        if tag == _SEQ_END:
            pos = istart
            break
        if tag != _ITEM:
            raise _truncated(pos)
        if ilen == _UNDEFINED:
            content, pos = _dataset(buf, istart, None, implicit, policy, top=False)
        else:
            content, _ = _dataset(
                buf, istart, istart + ilen, implicit, policy, top=False
            )
            pos = istart + ilen
        items.append(_HDR.pack(0xFFFE, 0xE000, len(content)) + content)
    else:
        if length == _UNDEFINED:
            raise _truncated(pos)
    return b"".join(items), pos


def _dataset(
    buf: Buffer,
    pos: int,
    end: int | None,
    implicit: bool,
    policy: Policy,
    *,
    top: bool,
    prefix: bytes = b"",
) -> tuple[bytes, int]:
    """Transform the elements from `pos` to `end` (or to an item delimiter)."""
    out: list[tuple[int, Buffer]] = []
    op_for = policy.op_for
    limit = len(buf) if end is None else end
    while pos < limit:
        start = pos
        tag, vr, length, vstart = _header(buf, pos, implicit)
        if tag == _ITEM_END and end is None:
            pos = vstart
            break
        encoded_vr = vr
        value_implicit = implicit
        if vr == "UN" and tag & 0x10000 == 0:
            vr = _dict_vr(tag)
            value_implicit = True
        if top and tag in policy.extra:
            pos = _value_end(buf, vstart, length, vr, value_implicit)
            continue
        op = op_for(tag, vr)
        if vr == "SQ" and op not in (Op.DROP, Op.EMPTY):
            value, pos = _sequence(buf, vstart, length, value_implicit, policy)
            out.append((tag, encode_element(tag, encoded_vr, value, implicit)))
            continue
        pos = _value_end(buf, vstart, length, vr, value_implicit)
        if op == Op.KEEP or (length == 0 and op not in (Op.DROP, Op.DUMMY)):
            out.append((tag, buf[start:pos]))
            continue
        if op == Op.DROP:
            continue
        value = _replacement(op, bytes(buf[vstart:pos]), vr, length, policy)
        out.append((tag, encode_element(tag, encoded_vr, value, implicit)))
    if top:
        out.extend(policy.extra.items())
        out.sort(key=lambda pair: pair[0])
    return b"".join([prefix, *(part for _, part in out)]), pos


def _replacement(op: int, raw: bytes, vr: str, length: int, policy: Policy) -> bytes:
    """Return the new value of an element that `op` replaces (not KEEP or DROP)."""
    if op == Op.EMPTY:
        return b""
    if op == Op.UID:
        return _map_values(raw, policy.uid, "UI")
    if op == Op.DATE:
        return _map_dates(raw, policy.date, vr)
    if op == Op.PSEUDONYM:
        return _map_values(raw, policy.pseudonym, vr)
    if op == Op.CLEAN:
        return policy.clean(raw, vr)
    return policy.dummy(vr, length)


def transform(
    body: Buffer, implicit: bool, policy: Policy, prefix: bytes = b""
) -> bytes:
    """Return `prefix` + the de-identified encoding of the data set `body`."""
    data, _ = _dataset(body, 0, len(body), implicit, policy, top=True, prefix=prefix)
    return data


def top_level_values(
    body: Buffer, implicit: bool, wanted: Callable[[int, str], bool]
) -> dict[int, tuple[str, bytes]]:
    """Return tag -> (VR, raw value) for the top-level elements `wanted` selects."""
    found: dict[int, tuple[str, bytes]] = {}
    pos = 0
    while pos < len(body):
        tag, vr, length, vstart = _header(body, pos, implicit)
        value_implicit = implicit
        if vr == "UN" and tag & 0x10000 == 0:
            vr = _dict_vr(tag)
            value_implicit = True
        pos = _value_end(body, vstart, length, vr, value_implicit)
        if wanted(tag, vr) and vr != "SQ":
            found[tag] = (vr, bytes(body[vstart:pos]))
    return found


def split_file(data: bytes) -> tuple[dict[int, bytes], memoryview]:
    """Split a Part-10 file (or a bare data set) into (file meta values, data set).

    A bare data set (no preamble, no ``DICM``) gets an empty meta dict. Raises
    :class:`DeidRefusedError` for data that is not DICOM.
    """
    meta: dict[int, bytes] = {}
    pos = 0
    if len(data) >= _PREAMBLE + 4 and data[_PREAMBLE : _PREAMBLE + 4] == b"DICM":
        pos = _PREAMBLE + 4
    elif data[:4] == b"DICM":
        pos = 4
    while pos + 8 <= len(data) and _U16X2.unpack_from(data, pos)[0] == _META_GROUP:
        tag, _vr, length, vstart = _header(data, pos, False)
        end = vstart + length
        if end > len(data):
            raise _truncated(pos)
        meta[tag] = bytes(data[vstart:end])
        pos = end
    body = memoryview(data)[pos:]
    if len(body) < _MIN_ELEMENT:
        raise DeidRefusedError("not DICOM: no data set")
    group = _U16X2.unpack_from(body, 0)[0]
    if group & 1 or group == 0 or (group > _PIXEL_GROUP and group != _PADDING_GROUP):
        raise DeidRefusedError("not DICOM: no plausible first element")
    return meta, body


def guess_implicit(body: Buffer) -> bool:
    """Guess whether a bare data set is implicit VR (the VR bytes are not a VR)."""
    return bytes(body[4:6]) not in _VR_NAMES


def build_file_meta(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str
) -> bytes:
    """Return preamble, ``DICM`` and a File Meta Information group for a data set."""
    elements = b"".join(
        encode_element(tag, vr, _pad(value, vr), False)
        for tag, vr, value in (
            (0x00020001, "OB", b"\x00\x01"),
            (0x00020002, "UI", sop_class_uid.encode("ascii")),
            (0x00020003, "UI", sop_instance_uid.encode("ascii")),
            (0x00020010, "UI", transfer_syntax.encode("ascii")),
            (0x00020012, "UI", IMPLEMENTATION_CLASS_UID.encode("ascii")),
            (0x00020013, "SH", _IMPLEMENTATION_VERSION),
        )
    )
    group_length = encode_element(0x00020000, "UL", _U32.pack(len(elements)), False)
    return b"\x00" * 128 + b"DICM" + group_length + elements
