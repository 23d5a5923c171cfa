"""Translate CTCAE v5.0 gradings to v6.0 with NCI's official mapping.

The NCI sheet "CTCAE v5.0 to v6.0 Mapping" (shipped in ``instruments/data``) has one
row per v5.0 term and grade, giving the v6.0 term and grade it becomes and the kind of
change.
Most grades keep their term and grade; some move to another term (Asystole grade 1 ->
Sinus bradycardia grade 1), some to an "Other, specify" term whose specification the row
gives, and a few change grade.

Examples
--------
>>> t = translate_v5_to_v6("Rectal hemorrhage", 2)
>>> (t.v6_term, t.v6_grade)
('Hematochezia', 2)
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from instruments.ctcae import GRADE_ABSENT, CtcaeVersion, load_catalogue, read_data_text
from instruments.errors import GradeError

__all__ = [
    "CtcaeTranslation",
    "CtcaeV5ToV6Map",
    "load_v5_to_v6_map",
    "translate_v5_to_v6",
]

_V5_CODE = "CTCAE v5.0 MedDRA 20.1 LLT Code"
_V5_TERM = "CTCAE v5.0 MedDRA 20.1 Term"
_V5_WHAT = "CTCAE v5.0 Grade/Definition/Navigational Note"
_CHANGE = "Change Type"
_V6_CODE = "CTCAE v6.0 MedDRA 28.0 LLT Code"
_V6_TERM = "CTCAE v6.0 MedDRA 28.0 Term"
_V6_WHAT = "CTCAE v6.0 Grade/Definition/Navigational Note"
_V6_SPECIFY = "CTCAE v6.0 Other Specify"


@dataclass(frozen=True)
class CtcaeTranslation:
    """A v5.0 term and grade and what they become in v6.0.

    Attributes
    ----------
    v5_term, v5_meddra_code, v5_grade
        The v5.0 grading.
    v6_term, v6_meddra_code, v6_grade
        The v6.0 grading it becomes.
    change
        NCI change type (``No change``, ``Clarification``, ``Deletion``,
        ``SOC change``).
    other_specify
        For a v6.0 "Other, specify" term, the specification to record (else ``None``).
    """

    v5_term: str
    v5_meddra_code: str
    v5_grade: int
    v6_term: str
    v6_meddra_code: str
    v6_grade: int
    change: str
    other_specify: str | None = None


def _grade_of(label: str) -> int | None:
    text = label.strip()
    return int(text.removeprefix("Grade ")) if text.startswith("Grade ") else None


class CtcaeV5ToV6Map:
    """The v5.0 -> v6.0 mapping, indexed by v5.0 MedDRA code and grade.

    Parameters
    ----------
    rows
        Rows of the NCI mapping sheet (``csv.DictReader`` of the shipped CSV).
    """

    def __init__(self, rows: Iterable[Mapping[str, str]]) -> None:
        self._grades: dict[tuple[str, int], CtcaeTranslation] = {}
        self._term_target: dict[str, tuple[str, str, str]] = {}
        votes: dict[str, Counter[tuple[str, str, str]]] = {}
        for row in rows:
            v5_grade = _grade_of(row[_V5_WHAT])
            v6_grade = _grade_of(row[_V6_WHAT])
            target = (
                row[_V6_TERM].strip(),
                row[_V6_CODE].strip(),
                row[_CHANGE].strip(),
            )
            code = row[_V5_CODE].strip()
            if row[_V5_WHAT].strip() == "Definition":
                self._term_target[code] = target
            if v5_grade is None or v6_grade is None:
                continue
            votes.setdefault(code, Counter())[target] += 1
            specify = row.get(_V6_SPECIFY, "").strip()
            self._grades[(code, v5_grade)] = CtcaeTranslation(
                v5_term=row[_V5_TERM].strip(),
                v5_meddra_code=code,
                v5_grade=v5_grade,
                v6_term=target[0],
                v6_meddra_code=target[1],
                v6_grade=v6_grade,
                change=target[2],
                other_specify=None if specify in {"", "N/A"} else specify,
            )
        for code, counter in votes.items():
            # Terms without a definition row ("Other, specify"): the usual target.
            self._term_target.setdefault(code, counter.most_common(1)[0][0])

    def translate(self, term: str, grade: int) -> CtcaeTranslation:
        """Translate a v5.0 term (name or MedDRA code) and grade to v6.0.

        Grade 0 ("assessed, absent") stays 0 on the term the v5.0 term becomes.

        Raises
        ------
        UnknownTermError
            If ``term`` is not a CTCAE v5.0 term.
        GradeError
            If v5.0 does not define ``grade`` for the term.
        """
        v5 = load_catalogue(CtcaeVersion.V5_0)
        entry, grade = v5.validate(term, grade)
        if grade == GRADE_ABSENT:
            v6_term, v6_code, change = self._term_target[entry.meddra_code]
            return CtcaeTranslation(
                entry.term, entry.meddra_code, 0, v6_term, v6_code, 0, change
            )
        found = self._grades.get((entry.meddra_code, grade))
        if found is None:  # pragma: no cover - the NCI map covers every grade
            raise GradeError(
                f"the v5.0 -> v6.0 map has no row for {entry.term} {grade}"
            )
        return found


@lru_cache(maxsize=1)
def load_v5_to_v6_map() -> CtcaeV5ToV6Map:
    """Return the shipped NCI v5.0 -> v6.0 mapping (read once)."""
    text = read_data_text("ctcae_v5.0_to_v6.0_mapping.csv")
    return CtcaeV5ToV6Map(csv.DictReader(io.StringIO(text)))


def translate_v5_to_v6(term: str, grade: int) -> CtcaeTranslation:
    """Translate a CTCAE v5.0 grading to v6.0 with the shipped NCI mapping.

    Examples
    --------
    >>> translate_v5_to_v6("Dry mouth", 0).v6_term
    'Dry mouth'
    """
    return load_v5_to_v6_map().translate(term, grade)
