"""DICOM PS3.15 Table E.1-1 (2024b) as shipped in ``etl/data/dicom`` and its options.

The table gives, per attribute, the action of the Basic Application Level
Confidentiality Profile and the action of each option. "A requirement for an Option,
when implemented, overrides any requirement for the underlying Profile" (PS3.15 E.3);
where two selected options disagree (the calibration dates: Retain Device Identity K,
Retain Longitudinal Temporal Information with Modified Dates C), C wins over K, the
safer of the two.

Action codes: X remove, Z empty, D dummy, K keep, C clean, U replace UID, and the
choices X/Z, X/D, Z/D, X/Z/D, X/Z/U*.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

__all__ = [
    "TABLE_EDITION",
    "DeidOption",
    "TableRow",
    "effective_action",
    "effective_rules",
    "load_table",
    "pattern_action",
]

TABLE_EDITION = "2024b"
_TABLE_FILE = "ps3.15_table_E.1-1.csv"
_CURVES = (0x5000, 0x50FF)
_OVERLAYS = (0x6000, 0x60FF)


class DeidOption(StrEnum):
    """Options of PS3.15 Table E.1-1, valued by their CID 7050 code."""

    RETAIN_LONG_MODIFIED_DATES = "113107"
    RETAIN_PATIENT_CHARACTERISTICS = "113108"
    RETAIN_DEVICE_IDENTITY = "113109"
    CLEAN_DESCRIPTORS = "113105"


#: Column of the shipped CSV for each option.
_OPTION_COLUMN: dict[DeidOption, str] = {
    DeidOption.RETAIN_LONG_MODIFIED_DATES: "retain_long_modified_dates",
    DeidOption.RETAIN_PATIENT_CHARACTERISTICS: "retain_patient_characteristics",
    DeidOption.RETAIN_DEVICE_IDENTITY: "retain_device_identity",
    DeidOption.CLEAN_DESCRIPTORS: "clean_descriptors",
}

#: The options rtcohort applies (all four), in CID 7050 order.
DEFAULT_OPTIONS: tuple[DeidOption, ...] = tuple(DeidOption)


@dataclass(frozen=True)
class TableRow:
    """One row of Table E.1-1.

    Attributes
    ----------
    tag : str
        The tag as printed in the table, e.g. ``(0010,0010)`` or ``(60XX,4000)``.
    keyword, vr : str
        PS3.6 keyword and VR (empty for pattern rows).
    basic : str
        Basic-profile action.
    options : dict[str, str]
        Option column name -> action, only where the table has a value.
    """

    tag: str
    name: str
    keyword: str
    vr: str
    basic: str
    options: dict[str, str]

    @property
    def tag_int(self) -> int | None:
        """The tag as an int, or None for a pattern row (``xx`` or ``GGGG``)."""
        text = self.tag.strip("()").replace(",", "")
        try:
            return int(text, 16)
        except ValueError:
            return None


@cache
def load_table() -> tuple[TableRow, ...]:
    """Return the rows of the shipped 2024b table (621 rows, 4 of them patterns)."""
    text = (Path(__file__).parent.parent / "data" / "dicom" / _TABLE_FILE).read_text(
        encoding="utf-8"
    )
    rows = []
    option_columns = set(_OPTION_COLUMN.values()) | {
        "retain_safe_private",
        "retain_uids",
        "retain_institution_identity",
        "retain_long_full_dates",
        "clean_structured_content",
        "clean_graphics",
    }
    for record in csv.DictReader(text.splitlines()):
        options = {col: record[col] for col in option_columns if record.get(col)}
        rows.append(
            TableRow(
                tag=record["tag"],
                name=record["name"],
                keyword=record["keyword"],
                vr=record["vr"],
                basic=record["basic_profile"],
                options=options,
            )
        )
    return tuple(rows)


def effective_action(
    row: TableRow, options: tuple[DeidOption, ...] = DEFAULT_OPTIONS
) -> str:
    """Return the action for `row` once the selected `options` are applied.

    Examples
    --------
    >>> rows = {r.keyword: r for r in load_table()}
    >>> effective_action(rows["ROIName"])
    'C'
    >>> effective_action(rows["PatientBirthDate"])
    'Z'
    """
    chosen = [
        row.options[_OPTION_COLUMN[o]]
        for o in options
        if _OPTION_COLUMN[o] in row.options
    ]
    if not chosen:
        return row.basic
    return "C" if "C" in chosen else chosen[0]


@cache
def effective_rules(
    options: tuple[DeidOption, ...] = DEFAULT_OPTIONS,
) -> dict[int, str]:
    """Return tag -> effective action for every row with an explicit tag."""
    rules: dict[int, str] = {}
    for row in load_table():
        tag = row.tag_int
        if tag is not None:
            rules[tag] = effective_action(row, options)
    return rules


def pattern_action(tag: int) -> str | None:
    """Return the action of the table's pattern rows for `tag`, or None.

    ``(50XX,XXXX)`` curve data and the whole ``(60XX,XXXX)`` overlay group are removed
    (the table names overlay data and comments; the rest of an overlay is useless
    without them); odd groups (private attributes) are removed.
    """
    group = tag >> 16
    if group & 1:
        return "X"
    if _CURVES[0] <= group <= _CURVES[1] or _OVERLAYS[0] <= group <= _OVERLAYS[1]:
        return "X"
    return None
