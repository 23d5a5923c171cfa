"""Per-tag policy of the PS3.15 de-identification (effective action -> operation).

How the choices of Table E.1-1 are resolved (see ``docs/pseudonymisation.md``):

- X remove; Z zero-length value; K keep (sequences are still walked);
- D dummy: texts ``ANONYMISED``, names ``ANONYMOUS``, numbers ``0``; dates are shifted;
  UIDs remapped; a sequence with D is kept with its content de-identified;
- X/Z: zero-length (a type 2 attribute stays present), sequences removed;
- X/D, X/Z/D, Z/D: dummy, sequences removed;
- X/Z/U*: sequences kept with every UID inside remapped;
- C on DA/DT: shifted by the patient's offset; on TM: kept; on text: identifiers of the
  same object (patient name parts, IDs, birth date, other removed names and
  identifiers of 3+ characters) replaced by ``***``, name parts only where they stand
  as words, so ROI names survive (a patient called Art keeps ``Heart``); on binary:
  removed;
- not in the table: UI remapped unless a class UID (SOP class, transfer syntax, coding
  scheme...), DA/DT shifted, anything else kept;
- PatientName and PatientID (at any depth) become the pseudonym;
- private groups, curve data (50xx) and the whole overlay group (60xx) removed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache

from pydicom.charset import decode_bytes, encode_string
from pydicom.datadict import dictionary_VR, keyword_dict

from etl.deid.codec import Op
from etl.deid.table import effective_rules, pattern_action

__all__ = [
    "PATIENT_BIRTH_DATE",
    "PATIENT_ID",
    "PATIENT_NAME",
    "dummy_value",
    "is_identifier",
    "make_cleaner",
    "op_for",
    "scrub_terms",
    "shift_text",
    "word_edges",
]

PATIENT_NAME, PATIENT_ID, PATIENT_BIRTH_DATE = 0x00100010, 0x00100020, 0x00100030
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_ITEM_GROUP = 0xFFFE
_YYYYMM, _YYYYMMDD = 6, 8
_MIN_TERM = 3

_CLASS_UID_KEYWORDS = frozenset(
    {
        "TransferSyntaxUID",
        "ReferencedTransferSyntaxUIDInFile",
        "ImplementationClassUID",
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "MappingResourceUID",
        "PrivateInformationCreatorUID",
    }
)
_CLASS_UID_TAGS = frozenset(
    tag
    for keyword, tag in keyword_dict.items()
    if (keyword.endswith("ClassUID") or keyword in _CLASS_UID_KEYWORDS)
    and dictionary_VR(tag) == "UI"
)


@cache
def op_for(tag: int, vr: str) -> int:
    """Return the :class:`Op` for a tag (policy of PS3.15 with the four options)."""
    if tag in (PATIENT_NAME, PATIENT_ID):
        return Op.PSEUDONYM
    if tag & 0xFFFF == 0 and tag >> 16 != _ITEM_GROUP:
        return Op.DROP  # group lengths are wrong once values change
    action = effective_rules().get(tag) or pattern_action(tag)
    if action is None:
        if vr == "UI":
            return Op.KEEP if tag in _CLASS_UID_TAGS else Op.UID
        return Op.DATE if vr in ("DA", "DT") else Op.KEEP
    return _resolve(action, vr)


def _resolve(action: str, vr: str) -> int:
    """Map a table action and a VR to one operation (choices resolved, documented)."""
    if action == "X":
        return Op.DROP
    if action == "Z":
        return Op.EMPTY
    if action == "U" or (action == "X/Z/U*" and vr in ("SQ", "UI")):
        return Op.RECURSE if vr == "SQ" else Op.UID
    if action in ("X/Z", "X/Z/U*"):
        return Op.DROP if vr == "SQ" else Op.EMPTY
    if action in ("X/D", "X/Z/D") and vr == "SQ":
        return Op.DROP
    if action in ("D", "X/D", "X/Z/D", "Z/D"):
        return _resolve_dummy(vr)
    if action == "K":
        return Op.KEEP
    return _resolve_clean(vr)


def _resolve_dummy(vr: str) -> int:
    """Operation for action D (replace with a dummy value of the same VR)."""
    if vr == "SQ":
        return Op.RECURSE  # dummy content = the content de-identified
    if vr in ("DA", "DT"):
        return Op.DATE
    return Op.UID if vr == "UI" else Op.DUMMY


def _resolve_clean(vr: str) -> int:
    """Operation for action C (clean: keep what is not identifying)."""
    if vr in ("DA", "DT"):
        return Op.DATE
    if vr in ("TM", "SQ"):
        return Op.KEEP  # whole-day shifts keep times; sequences are walked anyway
    if vr in _TEXT_VRS:
        return Op.CLEAN
    return Op.DROP if vr in _BINARY_VRS else Op.KEEP


def dummy_value(vr: str, length: int) -> bytes:
    """Return the dummy value (action D) for a VR; binary values keep their length."""
    if vr in ("PN", "AE"):
        return b"ANONYMOUS "
    if vr in ("IS", "DS"):
        return b"0 "
    if vr == "TM":
        return b"000000"
    if vr == "AS":
        return b"000Y"
    if vr == "UR":
        return b"urn:none"
    if vr in _TEXT_VRS:
        return b"ANONYMISED"
    return b"\x00" * max(2, length + length % 2)


def shift_text(value: str, offset_days: int) -> str:
    """Shift one DA or DT value by whole days, keeping its precision; "" if invalid."""
    text = value.strip()
    if re.fullmatch(r"\d{4}\.\d{2}\.\d{2}", text):  # ACR-NEMA DA
        text = text.replace(".", "")
    digits = 0
    while digits < min(_YYYYMMDD, len(text)) and text[digits].isdigit():
        digits += 1
    if digits not in (4, _YYYYMM, _YYYYMMDD):
        return ""
    try:
        day = date(
            int(text[:4]),
            int(text[4:6]) if digits >= _YYYYMM else 1,
            int(text[6:8]) if digits == _YYYYMMDD else 1,
        )
        moved = day + timedelta(days=offset_days)
    except (ValueError, OverflowError):
        return ""
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"[:digits] + text[digits:]


# -- identifiers to scrub from cleaned descriptors ----------------------------------


def scrub_terms(
    values: dict[int, tuple[str, bytes]], encodings: list[str]
) -> list[str]:
    """Return the identifier strings (3+ characters) to remove from cleaned texts."""
    terms: set[str] = set()
    for tag, (vr, raw) in values.items():
        if tag == PATIENT_BIRTH_DATE:
            text = raw.decode("latin-1").strip()
            if len(text) == _YYYYMMDD and text.isdigit():
                y, m, d = text[:4], text[4:6], text[6:]
                terms.update({text, f"{y}-{m}-{d}", f"{d}.{m}.{y}", f"{d}/{m}/{y}"})
            continue
        text = decode_bytes(raw, encodings, {0x5C, 0x5E, 0x3D})
        parts = re.split(r"[\\^=]", text) if vr == "PN" else text.split("\\")
        if vr == "PN":  # each word of a part too: "Liv Per", "Anna-Liisa"
            parts += [word for part in parts for word in re.split(r"[\s'-]+", part)]
        terms.update(part.strip() for part in parts if len(part.strip()) >= _MIN_TERM)
    return sorted(terms, key=len, reverse=True)


def is_identifier(tag: int, vr: str) -> bool:
    """Return True for a top-level text whose value is removed or replaced."""
    if tag in (PATIENT_NAME, PATIENT_ID, PATIENT_BIRTH_DATE):
        return True
    if vr not in _TEXT_VRS:
        return False
    return op_for(tag, vr) in (Op.DROP, Op.EMPTY, Op.DUMMY)


def make_cleaner(
    terms: list[str], encodings: list[str]
) -> Callable[[bytes, str], bytes]:
    """Return the Clean function: identifiers in `terms` replaced by ``***``.

    A term that is not letters only (an ID, a date, an address) is removed wherever
    it occurs. A term of letters only (a name part) is removed where it stands as a
    word: its edges are the text's ends, a character that is not a letter, or a
    change of case that starts a word (``HeartDoe``, ``PTVDoe``). Inside a word it
    is anatomy, not a name: a patient called Art keeps ``Heart``, Liv keeps
    ``Liver``, Ina keeps ``SpinalCord`` (see :func:`word_edges`).
    """
    if not terms:
        return lambda raw, vr: raw
    anywhere = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)
    each = [
        (re.compile(re.escape(t), re.IGNORECASE), t.isalpha())
        for t in sorted(terms, key=len, reverse=True)
    ]

    def clean(raw: bytes, vr: str) -> bytes:
        text = decode_bytes(raw, encodings, {0x5C})
        if anywhere.search(text) is None:
            return raw
        spans: list[tuple[int, int]] = []
        for pattern, word_only in each:
            for m in pattern.finditer(text):
                i, j = m.span()
                if word_only and not word_edges(text, i, j):
                    continue
                if all(j <= a or i >= b for a, b in spans):
                    spans.append((i, j))
        if not spans:
            return raw
        cleaned, end = [], 0
        for i, j in sorted(spans):
            cleaned += [text[end:i], "***"]
            end = j
        out = encode_string("".join([*cleaned, text[end:]]), encodings)
        return out + b" " if len(out) % 2 else out

    return clean


def word_edges(text: str, i: int, j: int) -> bool:
    """Return True when ``text[i:j]`` stands as a word of its own.

    Each edge is the end of the text, a neighbour that is not a letter, or a change
    of case that starts a word: lower to upper (``Heart|Doe``), or an upper letter
    followed by a lower one after an upper run (``PTV|Doe``).

    >>> word_edges("Bladder_Doe", 8, 11), word_edges("HeartDoe", 5, 8)
    (True, True)
    >>> word_edges("Heart", 2, 5), word_edges("SpinalCord", 2, 5)
    (False, False)
    >>> word_edges("PTVDoe", 3, 6), word_edges("DOEPTV", 0, 3)
    (True, False)
    """

    def starts_word(k: int) -> bool:  # is there a word edge just before text[k]?
        if k in (0, len(text)) or not (text[k - 1].isalpha() and text[k].isalpha()):
            return True
        before, here = text[k - 1], text[k]
        if before.islower() and here.isupper():
            return True
        follows_lower = k + 1 < len(text) and text[k + 1].islower()
        return before.isupper() and here.isupper() and follows_lower

    return starts_word(i) and starts_word(j)
