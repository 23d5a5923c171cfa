"""Read the CSV of ``rtcohort dvh`` as a user would: comment lines (``#``) skipped."""

from __future__ import annotations

import csv
import io


def dvh_csv_rows(text: str) -> list[dict[str, str]]:
    """The rows of a ``rtcohort dvh`` table, its ``#`` header comment skipped."""
    lines = (line for line in io.StringIO(text) if not line.startswith("#"))
    return list(csv.DictReader(lines))
