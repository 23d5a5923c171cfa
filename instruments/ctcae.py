# ruff: noqa: RUF001, RUF002 -- grade ranges use the en dash, as NCI writes them
"""NCI CTCAE v5.0 and v6.0: terms, grades, search and grade validation.

The catalogue is the NCI "Clean Copy" sheet of each version, shipped in
``instruments/data`` (public domain, see ``data/SOURCE.md``). A grade of a term exists
when its description is not ``-``. Grade 0 is always allowed and means "assessed,
absent"; grade 5 (death) only where the term defines it.

Parsing (:func:`parse_catalogue`) and validation are pure; :func:`load_catalogue` reads
the shipped CSV once per version.

Examples
--------
>>> cat = load_catalogue("5.0")
>>> cat.term("Dry mouth").grades
(1, 2, 3)
>>> cat.grade_problem("Alopecia", 3)
'CTCAE v5.0 defines grades 1–2 for Alopecia'
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from instruments.datafiles import read_data_text
from instruments.errors import GradeError, InstrumentError, UnknownTermError

__all__ = [
    "GRADE_ABSENT",
    "SYNONYMS",
    "Attribution",
    "CtcaeCatalogue",
    "CtcaeTerm",
    "CtcaeVersion",
    "format_grades",
    "load_catalogue",
    "parse_catalogue",
    "read_data_text",
]

#: Grade 0: the term was assessed and the adverse event is absent.
GRADE_ABSENT = 0

_NOT_DEFINED = "-"


class CtcaeVersion(StrEnum):
    """CTCAE versions shipped with rtcohort."""

    V5_0 = "5.0"
    V6_0 = "6.0"

    @classmethod
    def parse(cls, value: CtcaeVersion | str) -> CtcaeVersion:
        """Normalise ``"5"``, ``"v5.0"``, ``"5.0"`` to a member."""
        text = str(value).strip().lower().removeprefix("v")
        text = {"5": "5.0", "6": "6.0"}.get(text, text)
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(v.value for v in cls)
            raise UnknownTermError(
                f"unknown CTCAE version {value!r} (known: {known})"
            ) from None


class Attribution(StrEnum):
    """Attribution of an adverse event to radiotherapy (CTEP five-point scale)."""

    UNRELATED = "unrelated"
    UNLIKELY = "unlikely"
    POSSIBLE = "possible"
    PROBABLE = "probable"
    DEFINITE = "definite"

    @classmethod
    def parse(cls, value: Attribution | str) -> Attribution:
        """Normalise a case-insensitive name to a member."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            known = ", ".join(a.value for a in cls)
            raise InstrumentError(
                f"unknown attribution {value!r} (known: {known})"
            ) from None


#: Words people use that are not CTCAE terms -> the CTCAE term to use instead.
SYNONYMS: Mapping[str, str] = {
    "xerostomia": "Dry mouth",
    "radiation dermatitis": "Dermatitis radiation",
    "radiation pneumonitis": "Pneumonitis",
    "radiation proctitis": "Proctitis",
    "radiation cystitis": "Cystitis noninfective",
    "mucositis": "Mucositis oral",
    "stomatitis": "Mucositis oral",
    "odynophagia": "Dysphagia",
}


@dataclass(frozen=True)
class CtcaeTerm:
    """One CTCAE term of one version.

    Attributes
    ----------
    version
        CTCAE version.
    term
        CTCAE term (a MedDRA Lowest Level Term).
    meddra_code
        MedDRA LLT code, 8 digits, as text.
    soc
        MedDRA System Organ Class.
    grade_descriptions
        Grade (1-5) -> NCI description, only for the grades the term defines.
    definition
        NCI definition (empty if none).
    navigational_note
        NCI navigational note (empty if none).
    """

    version: CtcaeVersion
    term: str
    meddra_code: str
    soc: str
    grade_descriptions: Mapping[int, str]
    definition: str = ""
    navigational_note: str = ""

    @property
    def grades(self) -> tuple[int, ...]:
        """Grades 1-5 that the term defines."""
        return tuple(sorted(self.grade_descriptions))

    @property
    def allowed_grades(self) -> tuple[int, ...]:
        """Grades that may be recorded: 0 ("assessed, absent") and the defined ones."""
        return (GRADE_ABSENT, *self.grades)


def format_grades(grades: Iterable[int]) -> str:
    """Format grades as runs: ``(1, 2)`` -> ``"grades 1–2"``, ``(5,)`` -> ``"grade 5"``.

    Examples
    --------
    >>> format_grades([1, 3, 4, 5])
    'grades 1, 3–5'
    """
    values = sorted(set(grades))
    runs: list[list[int]] = []
    for g in values:
        if runs and g == runs[-1][-1] + 1:
            runs[-1].append(g)
        else:
            runs.append([g])
    parts = [f"{r[0]}–{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs]
    noun = "grade" if len(values) == 1 else "grades"
    return f"{noun} {', '.join(parts)}"


_COLUMNS: Mapping[CtcaeVersion, tuple[str, str, str]] = {
    CtcaeVersion.V5_0: ("MedDRA Code", "MedDRA SOC", "CTCAE Term"),
    CtcaeVersion.V6_0: (
        "CTCAE v6.0 MedDRA 28.0 LLT Code",
        "CTCAE v6.0 MedDRA 28.0 SOC",
        "CTCAE v6.0 MedDRA 28.0 Term",
    ),
}


def _cell(row: Mapping[str, str | None], key: str) -> str:
    value = (row.get(key) or "").strip()
    return "" if value == _NOT_DEFINED else value


def parse_catalogue(
    rows: Iterable[Mapping[str, str | None]], version: CtcaeVersion | str
) -> CtcaeCatalogue:
    """Build a catalogue from the rows of an NCI CTCAE "Clean Copy" sheet.

    Parameters
    ----------
    rows
        Mappings with the sheet's column names (``csv.DictReader`` rows).
    version
        CTCAE version of the sheet (decides the column names).
    """
    ver = CtcaeVersion.parse(version)
    code_col, soc_col, term_col = _COLUMNS[ver]
    terms = []
    for row in rows:
        grades = {g: _cell(row, f"Grade {g}") for g in range(1, 6)}
        terms.append(
            CtcaeTerm(
                version=ver,
                term=_cell(row, term_col),
                meddra_code=_cell(row, code_col),
                soc=_cell(row, soc_col),
                grade_descriptions={g: d for g, d in grades.items() if d},
                definition=_cell(row, "Definition"),
                navigational_note=_cell(row, "Navigational Note"),
            )
        )
    return CtcaeCatalogue(ver, tuple(terms))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class CtcaeCatalogue:
    """The terms of one CTCAE version, with lookup, search and grade validation.

    Parameters
    ----------
    version
        CTCAE version.
    terms
        Its terms (term names and MedDRA codes must be unique).
    """

    def __init__(self, version: CtcaeVersion, terms: tuple[CtcaeTerm, ...]) -> None:
        self.version = version
        self.terms = terms
        self._by_name = {t.term.casefold(): t for t in terms}
        self._by_code = {t.meddra_code: t for t in terms}
        if len(self._by_name) != len(terms) or len(self._by_code) != len(terms):
            raise UnknownTermError(f"CTCAE v{version}: term names or codes repeat")

    def __len__(self) -> int:
        return len(self.terms)

    def __contains__(self, name_or_code: object) -> bool:
        key = str(name_or_code).strip()
        return key.casefold() in self._by_name or key in self._by_code

    def term(self, name_or_code: str | CtcaeTerm) -> CtcaeTerm:
        """Return a term by its exact name (case-insensitive) or MedDRA code.

        Raises
        ------
        UnknownTermError
            If the version has no such term; the message suggests the CTCAE term for a
            known synonym ("Xerostomia" -> "Dry mouth") or close names.
        """
        if isinstance(name_or_code, CtcaeTerm):
            name_or_code = name_or_code.meddra_code
        key = str(name_or_code).strip()
        found = self._by_name.get(key.casefold()) or self._by_code.get(key)
        if found is not None:
            return found
        message = f"CTCAE v{self.version} has no term {key!r}"
        suggestions = [t.term for t in self.search(key)[:3]] if key else []
        if suggestions:
            message += (
                "; did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
            )
        raise UnknownTermError(message)

    def search(self, text: str, *, descriptions: bool = True) -> list[CtcaeTerm]:
        """Find terms by words of the term, a MedDRA code, or grade descriptions.

        Every word of ``text`` must occur (as a word prefix) in the term, its SOC or,
        with ``descriptions``, its grade descriptions and definition. Terms matching on
        their name come first. Known synonyms ("xerostomia") find their CTCAE term.

        Examples
        --------
        >>> [t.term for t in load_catalogue("5.0").search("xerostomia")][:1]
        ['Dry mouth']
        """
        query = text.strip()
        if not query:
            return list(self.terms)
        if query in self._by_code:
            return [self._by_code[query]]
        words = _words(query)
        if not words:
            return []
        ranked: list[tuple[int, int, CtcaeTerm]] = []
        synonym = SYNONYMS.get(" ".join(words))
        for index, term in enumerate(self.terms):
            rank = _match_rank(term, words, descriptions=descriptions)
            if synonym is not None and term.term == synonym:
                rank = 0
            if rank is not None:
                ranked.append((rank, index, term))
        return [t for _, _, t in sorted(ranked, key=lambda r: (r[0], r[1]))]

    def grade_problem(self, term: str | CtcaeTerm, grade: object) -> str | None:
        """Return what is wrong with recording ``grade`` for ``term``, or ``None``.

        Grade 0 ("assessed, absent") is always allowed; other grades only where the
        term defines them. Unknown terms raise :class:`UnknownTermError`.

        Examples
        --------
        >>> load_catalogue("5.0").grade_problem("Dry mouth", 0) is None
        True
        """
        entry = self.term(term)
        if isinstance(grade, bool) or not isinstance(grade, int):
            try:
                as_float = float(str(grade).strip())
            except ValueError:
                return f"CTCAE grade {grade!r} is not a number (term {entry.term})"
            if not as_float.is_integer():
                return f"CTCAE grade {grade!r} is not an integer (term {entry.term})"
            grade = int(as_float)
        if grade in entry.allowed_grades:
            return None
        return (
            f"CTCAE v{self.version} defines {format_grades(entry.grades)}"
            f" for {entry.term}"
        )

    def validate(self, term: str | CtcaeTerm, grade: object) -> tuple[CtcaeTerm, int]:
        """Return the term and the grade as ``int``, or raise :class:`GradeError`."""
        problem = self.grade_problem(term, grade)
        if problem is not None:
            raise GradeError(problem)
        return self.term(term), int(float(str(grade)))


def _match_rank(term: CtcaeTerm, words: list[str], *, descriptions: bool) -> int | None:
    name_words = _words(term.term)
    if all(any(n.startswith(w) for n in name_words) for w in words):
        return 1
    haystack = _words(term.soc)
    if descriptions:
        haystack = haystack + _words(
            " ".join(term.grade_descriptions.values()) + " " + term.definition
        )
    pool = set(name_words) | set(haystack)
    if all(any(h.startswith(w) for h in pool) for w in words):
        return 2
    return None


_CATALOGUE_FILES: Mapping[CtcaeVersion, str] = {
    CtcaeVersion.V5_0: "ctcae_v5.0.csv",
    CtcaeVersion.V6_0: "ctcae_v6.0.csv",
}


@lru_cache(maxsize=4)
def _load(version: CtcaeVersion) -> CtcaeCatalogue:
    text = read_data_text(_CATALOGUE_FILES[version])
    return parse_catalogue(csv.DictReader(io.StringIO(text)), version)


def load_catalogue(version: CtcaeVersion | str = CtcaeVersion.V5_0) -> CtcaeCatalogue:
    """Return the shipped catalogue of a CTCAE version (read once, then cached).

    Examples
    --------
    >>> len(load_catalogue("5.0")), len(load_catalogue("6.0"))
    (837, 850)
    """
    return _load(CtcaeVersion.parse(version))
