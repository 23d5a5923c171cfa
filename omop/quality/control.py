"""Read the DQD v5.4 control files and our list of known failures.

The control files (``data/OMOP_CDMv5.4_*.csv``, see ``data/SOURCE.md``) switch each
check on per table, field or concept and hold its threshold (percent of violating rows
allowed) and, for some checks, a value (a plausible low/high bound, a unit list). Every
problem is
reported as :class:`ControlFileError` naming the file and the line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omop.quality.errors import ControlFileError

__all__ = [
    "DATA_DIR",
    "CheckDescription",
    "ControlFiles",
    "ControlRow",
    "KnownFailure",
    "load_control",
    "load_known_failures",
]

DATA_DIR = Path(__file__).parent / "data"
DESCRIPTIONS = "OMOP_CDMv5.4_Check_Descriptions.csv"
TABLE_LEVEL = "OMOP_CDMv5.4_Table_Level.csv"
FIELD_LEVEL = "OMOP_CDMv5.4_Field_Level.csv"
CONCEPT_LEVEL = "OMOP_CDMv5.4_Concept_Level.csv"
KNOWN_FAILURES = "known_failures.csv"

_REQUIRED: dict[str, tuple[str, ...]] = {
    DESCRIPTIONS: (
        "checkLevel",
        "checkName",
        "checkDescription",
        "kahnContext",
        "kahnCategory",
        "kahnSubcategory",
        "sqlFile",
    ),
    TABLE_LEVEL: ("cdmTableName", "measurePersonCompleteness"),
    FIELD_LEVEL: ("cdmTableName", "cdmFieldName", "isRequired", "isPrimaryKey"),
    CONCEPT_LEVEL: ("cdmTableName", "cdmFieldName", "conceptId", "unitConceptId"),
    KNOWN_FAILURES: (
        "checkName",
        "cdmTableName",
        "cdmFieldName",
        "conceptId",
        "reason",
    ),
}
_LEVELS = ("TABLE", "FIELD", "CONCEPT")


@dataclass(frozen=True)
class ControlRow:
    """One row of a control file, with where it came from.

    Attributes
    ----------
    file
        Path of the control file.
    line
        1-based line number of the row (the header is line 1).
    values
        Cells by column name (stripped; missing cells are ``""``).
    """

    file: str
    line: int
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        """Return the stripped cell, ``""`` when absent or ``NA``."""
        value = self.values.get(column) or ""
        return "" if value == "NA" else value

    def where(self) -> str:
        """Return ``file:line`` for error messages."""
        return f"{self.file}:{self.line}"

    def number(self, column: str, default: float = 0.0) -> float:
        """Return a numeric cell (``default`` when empty).

        Raises
        ------
        ControlFileError
            When the cell is not a number.
        """
        text = self[column]
        if not text:
            return default
        try:
            return float(text)
        except ValueError:
            raise ControlFileError(
                f"{self.where()}: column {column} is {text!r}, not a number"
            ) from None


@dataclass(frozen=True)
class CheckDescription:
    """One check type of the descriptions file (``checkName`` and its Kahn category)."""

    name: str
    level: str
    description: str
    context: str
    category: str
    subcategory: str
    sql_file: str
    severity: str


@dataclass(frozen=True)
class ControlFiles:
    """The parsed control files."""

    descriptions: dict[str, CheckDescription]
    tables: list[ControlRow] = field(default_factory=list)
    fields: list[ControlRow] = field(default_factory=list)
    concepts: list[ControlRow] = field(default_factory=list)


@dataclass(frozen=True)
class KnownFailure:
    """A check that fails for a known reason; ``*`` or empty matches anything."""

    check_name: str
    table: str
    field: str
    concept_id: str
    reason: str

    def matches(
        self,
        check_name: str,
        table: str,
        field: str | None,
        concept_id: int | str | None,
    ) -> bool:
        """Return whether this entry covers a check result."""
        wanted = (
            (self.check_name, check_name),
            (self.table.lower(), table.lower()),
            (self.field.lower(), (field or "").lower()),
            (self.concept_id, "" if concept_id is None else str(concept_id)),
        )
        return all(pattern in {"", "*"} or pattern == got for pattern, got in wanted)


def _rows(path: Path) -> Iterator[ControlRow]:
    name = path.name
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise ControlFileError(f"{path}: control file is missing") from None
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or ()]
            missing = [c for c in _REQUIRED.get(name, ()) if c not in header]
            if missing:
                raise ControlFileError(
                    f"{path}:1: header lacks column(s) {', '.join(missing)}"
                )
            reader.fieldnames = header
            start = 2
            for raw in reader:
                if None in raw:
                    raise ControlFileError(
                        f"{path}:{start}: more cells than the header has columns"
                    )
                values = {k: (v or "").strip() for k, v in raw.items()}
                yield ControlRow(str(path), start, values)
                start = reader.line_num + 1
        except UnicodeDecodeError as exc:
            raise ControlFileError(f"{path}: not UTF-8 ({exc.reason})") from None
        except csv.Error as exc:
            raise ControlFileError(f"{path}:{reader.line_num}: {exc}") from None


def _descriptions(path: Path) -> dict[str, CheckDescription]:
    out: dict[str, CheckDescription] = {}
    for row in _rows(path):
        level = row["checkLevel"].upper()
        if level not in _LEVELS or not row["checkName"]:
            raise ControlFileError(
                f"{row.where()}: checkLevel {row['checkLevel']!r} / checkName "
                f"{row['checkName']!r} is not a TABLE, FIELD or CONCEPT check"
            )
        out[row["checkName"]] = CheckDescription(
            name=row["checkName"],
            level=level,
            description=row["checkDescription"],
            context=row["kahnContext"],
            category=row["kahnCategory"],
            subcategory=row["kahnSubcategory"],
            sql_file=row["sqlFile"],
            severity=row["severity"],
        )
    return out


def _named(rows: Sequence[ControlRow], *columns: str) -> list[ControlRow]:
    for row in rows:
        for column in columns:
            if not row[column]:
                raise ControlFileError(f"{row.where()}: {column} is empty")
    return list(rows)


def load_control(folder: Path | None = None) -> ControlFiles:
    """Read the four DQD control files of ``folder`` (the bundled copies by default).

    Raises
    ------
    ControlFileError
        A file is missing, is not UTF-8 CSV, lacks a column or has a malformed row.
    """
    base = folder if folder is not None else DATA_DIR
    return ControlFiles(
        descriptions=_descriptions(base / DESCRIPTIONS),
        tables=_named(list(_rows(base / TABLE_LEVEL)), "cdmTableName"),
        fields=_named(list(_rows(base / FIELD_LEVEL)), "cdmTableName", "cdmFieldName"),
        concepts=_named(
            list(_rows(base / CONCEPT_LEVEL)),
            "cdmTableName",
            "cdmFieldName",
            "conceptId",
        ),
    )


def load_known_failures(path: Path | None = None) -> list[KnownFailure]:
    """Read the known-failures file (``data/known_failures.csv`` by default).

    Raises
    ------
    ControlFileError
        The file is missing or a row has no reason.
    """
    out = []
    for row in _rows(path if path is not None else DATA_DIR / KNOWN_FAILURES):
        if not row["checkName"] or not row["reason"]:
            raise ControlFileError(f"{row.where()}: checkName and reason are required")
        out.append(
            KnownFailure(
                row["checkName"],
                row["cdmTableName"],
                row["cdmFieldName"],
                row["conceptId"],
                row["reason"],
            )
        )
    return out
