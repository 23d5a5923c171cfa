"""Errors raised by the :mod:`instruments` package."""

from __future__ import annotations

from omop.errors import RTCohortError

__all__ = [
    "FhirError",
    "GradeError",
    "GradingFileError",
    "InstrumentError",
    "InstrumentSpecError",
    "ResponseValidationError",
    "ShortlistError",
    "UnknownTermError",
    "WordingFileError",
]


class InstrumentError(RTCohortError, ValueError):
    """Base class of the errors of the outcome instruments."""


class InstrumentSpecError(InstrumentError):
    """An instrument definition (items and scales) is inconsistent or unknown."""


class ResponseValidationError(InstrumentError):
    """A questionnaire response set holds an answer the instrument does not allow."""


class UnknownTermError(InstrumentError, LookupError):
    """A CTCAE term, MedDRA code or CTCAE version is not in the catalogue."""


class GradeError(InstrumentError):
    """A CTCAE grade that the term does not define (or that is not a grade at all)."""


class ShortlistError(InstrumentError):
    """A centre's CTCAE shortlist file is malformed or names an unknown term."""


class WordingFileError(InstrumentError):
    """A site-supplied item wording file is malformed."""


class FhirError(InstrumentError):
    """A FHIR resource is malformed or does not fit the instrument.

    Parameters
    ----------
    problems
        One line per problem, each naming the resource path and field.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        head = self.problems[0] if self.problems else "invalid FHIR content"
        more = len(self.problems) - 1
        super().__init__(head if more <= 0 else f"{head} (and {more} more problems)")


class GradingFileError(InstrumentError):
    """A CSV file of CTCAE gradings is malformed.

    Parameters
    ----------
    problems
        One line per problem, each naming the file, line and column.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        head = self.problems[0] if self.problems else "invalid gradings file"
        more = len(self.problems) - 1
        super().__init__(head if more <= 0 else f"{head} (and {more} more problems)")
