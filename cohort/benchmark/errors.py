"""Errors of the benchmarking statistics."""

from __future__ import annotations

from cohort.errors import CohortError

__all__ = ["BenchmarkInputError"]


class BenchmarkInputError(CohortError, ValueError):
    """Malformed input of a benchmarking statistic; the message names the field."""
