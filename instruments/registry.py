"""Registry of questionnaire instruments, defined as data files.

Each instrument is a pair of CSV files in ``instruments/data`` (or any folder a site
passes): ``<stem>_items.csv`` and ``<stem>_scales.csv`` in the format of the shipped
QLQ-C30 files::

    # <stem>_items.csv
    item,scale_code,response_min,response_max,response_type,descriptor_neutral
    1,PF2,1,4,4-point,strenuous activities

    # <stem>_scales.csv
    scale_code,scale_name,scale_type,items,n_items,item_min,item_max,item_range,
    min_items_required,transform,in_summary_score,summary_direction
    PF2,Physical functioning (revised),functional,1;2;3;4;5,5,1,4,3,3,...,yes,as is

The shipped instruments are listed in ``data/instruments.csv`` (``code, version, stem,
summary_code``). Only the columns the scoring needs are read (item number and range,
neutral label; scale code, name, type, items, range, summary membership); ``n_items``,
``item_range`` and ``min_items_required`` are cross-checked against the items. Adding an
EORTC module (QLQ-BR23/BR45, H&N35, PR25) is adding its two files and a manifest row. No
item wording: that comes from the site's wording file (:mod:`instruments.wording`).

Examples
--------
>>> get_instrument("QLQ-C30").spec.n_items
30
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from instruments.datafiles import read_data_text
from instruments.errors import InstrumentSpecError
from instruments.scoring import InstrumentSpec, ItemSpec, ScaleSpec, ScaleType

__all__ = [
    "Instrument",
    "available_instruments",
    "get_instrument",
    "load_instrument",
    "parse_instrument",
]


@lru_cache(maxsize=1)
def _manifest() -> dict[str, tuple[str, str, str | None]]:
    """Code -> (version, file stem, summary column) from ``data/instruments.csv``."""
    text = _data().joinpath("instruments.csv").read_text("utf-8")
    return {
        row["code"].strip().upper(): (
            row["version"].strip(),
            row["stem"].strip(),
            (row.get("summary_code") or "").strip() or None,
        )
        for row in csv.DictReader(io.StringIO(text))
    }


def _data() -> Traversable:
    return resources.files("instruments").joinpath("data")


@dataclass(frozen=True)
class Instrument:
    """A registered instrument: its scoring structure and where it came from.

    Attributes
    ----------
    spec
        Items and scales.
    source
        The files it was read from.
    """

    spec: InstrumentSpec
    source: str

    @property
    def code(self) -> str:
        """Instrument code (``QLQ-C30``)."""
        return self.spec.code


def _int(value: str | None, where: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise InstrumentSpecError(f"{where}: {value!r} is not an integer") from None


def parse_instrument(
    code: str,
    version: str,
    items_csv: str,
    scales_csv: str,
    *,
    summary_code: str | None = None,
    source: str = "",
) -> InstrumentSpec:
    """Build an instrument from the text of its items and scales CSV files.

    Raises
    ------
    InstrumentSpecError
        Naming the file, line and field that is wrong or inconsistent.
    """
    items: list[ItemSpec] = []
    for line, row in enumerate(csv.DictReader(io.StringIO(items_csv)), start=2):
        where = f"{source}_items.csv line {line}"
        items.append(
            ItemSpec(
                number=_int(row.get("item"), f"{where} item"),
                response_min=_int(row.get("response_min"), f"{where} response_min"),
                response_max=_int(row.get("response_max"), f"{where} response_max"),
                label=(row.get("descriptor_neutral") or "").strip(),
            )
        )
    ranges = {item.number: item for item in items}
    scales: list[ScaleSpec] = []
    for line, row in enumerate(csv.DictReader(io.StringIO(scales_csv)), start=2):
        where = f"{source}_scales.csv line {line}"
        try:
            kind = ScaleType((row.get("scale_type") or "").strip())
        except ValueError:
            raise InstrumentSpecError(
                f"{where} scale_type: {row.get('scale_type')!r} is not one of"
                f" {', '.join(t.value for t in ScaleType)}"
            ) from None
        numbers = tuple(
            _int(n, f"{where} items") for n in (row.get("items") or "").split(";")
        )
        item_range = _int(row.get("item_range"), f"{where} item_range")
        for n in numbers:
            item = ranges.get(n)
            if item is None:
                raise InstrumentSpecError(f"{where} items: no item {n}")
            if item.response_max - item.response_min != item_range:
                raise InstrumentSpecError(
                    f"{where} item_range: {item_range} but item {n} spans"
                    f" {item.response_min}-{item.response_max}"
                )
        if row.get("n_items") and _int(row["n_items"], where) != len(numbers):
            raise InstrumentSpecError(f"{where} n_items: does not match items")
        required = row.get("min_items_required")
        if required and _int(required, where) != (len(numbers) + 1) // 2:
            raise InstrumentSpecError(
                f"{where} min_items_required: the half-items rule needs"
                f" {(len(numbers) + 1) // 2} of {len(numbers)}"
            )
        scales.append(
            ScaleSpec(
                code=(row.get("scale_code") or "").strip(),
                name=(row.get("scale_name") or "").strip(),
                scale_type=kind,
                items=numbers,
                item_range=item_range,
                in_summary=(row.get("in_summary_score") or "").strip().lower() == "yes",
            )
        )
    return InstrumentSpec(
        code=code,
        version=version,
        items=tuple(items),
        scales=tuple(scales),
        summary_code=summary_code,
    )


def load_instrument(
    code: str,
    version: str,
    folder: Path | str,
    stem: str,
    *,
    summary_code: str | None = None,
) -> Instrument:
    """Read an instrument from ``<folder>/<stem>_items.csv`` and ``_scales.csv``."""
    base = Path(folder)
    try:
        items = (base / f"{stem}_items.csv").read_text(encoding="utf-8")
        scales = (base / f"{stem}_scales.csv").read_text(encoding="utf-8")
    except OSError as exc:
        raise InstrumentSpecError(f"cannot read instrument {code}: {exc}") from None
    spec = parse_instrument(
        code, version, items, scales, summary_code=summary_code, source=stem
    )
    return Instrument(spec=spec, source=str(base / stem))


@lru_cache(maxsize=8)
def get_instrument(code: str) -> Instrument:
    """Return a shipped instrument by code (case-insensitive).

    Raises
    ------
    InstrumentSpecError
        If no instrument has that code.
    """
    key = code.strip().upper()
    if key not in _manifest():
        raise InstrumentSpecError(
            f"unknown instrument {code!r} (known: {', '.join(available_instruments())})"
        )
    version, stem, summary = _manifest()[key]
    spec = parse_instrument(
        key,
        version,
        read_data_text(f"{stem}_items.csv"),
        read_data_text(f"{stem}_scales.csv"),
        summary_code=summary,
        source=stem,
    )
    return Instrument(spec=spec, source=f"instruments/data/{stem}")


def available_instruments() -> tuple[str, ...]:
    """Codes of the shipped instruments."""
    return tuple(_manifest())
