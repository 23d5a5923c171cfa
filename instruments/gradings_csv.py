"""CTCAE gradings from a CSV file: one row per (patient, term, grade) assessment.

Columns: ``patient_id`` (the hospital identifier, pseudonymised by the importer),
``timepoint``, ``assessed_on`` (YYYY-MM-DD), ``ctcae_version`` (default 5.0), ``term``,
``grade`` and ``attribution``. The rows become the same :class:`ToxicityGrading`
records as FHIR AdverseEvent resources, so both formats are stored alike.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from instruments.errors import GradingFileError, InstrumentError
from instruments.fhir import SubjectIdentifier
from instruments.fhir_adverse_event import ToxicityGrading

__all__ = ["CSV_COLUMNS", "CSV_PATIENT_SYSTEM", "read_gradings_csv"]

#: The columns a gradings file must have.
CSV_COLUMNS = (
    "patient_id",
    "timepoint",
    "assessed_on",
    "ctcae_version",
    "term",
    "grade",
    "attribution",
)
#: The identifier system given to ``patient_id`` (a hospital identifier).
CSV_PATIENT_SYSTEM = "urn:rtcohort:csv:patient_id"


def read_gradings_csv(path: str | Path, text: str) -> list[ToxicityGrading]:
    r"""Parse and validate every row of a gradings CSV.

    Parameters
    ----------
    path : str or Path
        Where the text came from: named in problems (``<name> line <n> <column>:
        ...``, with the file's name) and in the resource ids (``<name>:<line>``).
    text : str
        The file's content.

    Raises
    ------
    GradingFileError
        Columns missing or any row invalid; ``problems`` lists every one.

    Examples
    --------
    >>> rows = read_gradings_csv(
    ...     "g.csv",
    ...     "patient_id,timepoint,assessed_on,ctcae_version,term,grade,attribution\n"
    ...     "H1,m3,2025-04-01,5.0,Pneumonitis,2,\n",
    ... )
    >>> rows[0].resource_id, rows[0].grade
    ('g.csv:2', 2)
    """
    name = Path(path).name
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise GradingFileError([f"{path}: missing column(s) {', '.join(missing)}"])
    gradings, problems = [], []
    for line, row in enumerate(reader, start=2):
        where = f"{name} line {line}"
        patient = (row.get("patient_id") or "").strip()
        if not patient:
            problems.append(f"{where} patient_id: empty")
            continue
        try:
            assessed_on = date.fromisoformat((row.get("assessed_on") or "").strip())
        except ValueError:
            problems.append(
                f"{where} assessed_on: {row.get('assessed_on')!r} is not a date"
                " (YYYY-MM-DD)"
            )
            continue
        try:
            gradings.append(
                ToxicityGrading(
                    resource_id=f"{name}:{line}",
                    subject=SubjectIdentifier(CSV_PATIENT_SYSTEM, patient),
                    version=(row.get("ctcae_version") or "5.0").strip(),
                    term=(row.get("term") or "").strip(),
                    grade=(row.get("grade") or "").strip(),  # type: ignore[arg-type]
                    assessed_on=assessed_on,
                    attribution=(row.get("attribution") or "").strip() or None,
                    timepoint=(row.get("timepoint") or "").strip() or None,
                )
            )
        except InstrumentError as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise GradingFileError(problems)
    return gradings
