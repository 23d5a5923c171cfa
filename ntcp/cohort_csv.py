"""Read the cohort CSV of ``rtcohort ntcp fit|predict``.

One row per patient with the columns ``patient_id``, ``n_fractions`` (may be empty
when no EQD2 is asked), ``dvh`` (the organ's differential DVH as
``dose_gy;volume_fraction`` pairs joined by ``|``, physical dose at bin centres) and
``outcome`` (0/1; not needed for prediction). Other columns are kept as covariates
when named. Errors name the line (the header is line 1) and the field.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from numpy.typing import NDArray

from ntcp.errors import CohortCsvError
from ntcp.geud import DEFAULT_VOLUME_TOL, DVHSet, dvh_problems

__all__ = ["REQUIRED_COLUMNS", "CohortTable", "format_dvh", "read_cohort_csv"]

REQUIRED_COLUMNS = ("patient_id", "n_fractions", "dvh")


@dataclass(frozen=True)
class CohortTable:
    """A cohort read from CSV."""

    patient_ids: list[str]
    dvhs: DVHSet
    outcome: NDArray[np.int64] | None
    covariates: pd.DataFrame
    sha256: str


def read_cohort_csv(
    source: str | Path,
    covariates: Sequence[str] = (),
    require_outcome: bool = True,
    volume_tol: float = DEFAULT_VOLUME_TOL,
) -> CohortTable:
    """Read and validate a cohort CSV file.

    Parameters
    ----------
    source : str or Path
        Path of the CSV file.
    covariates : sequence of str
        Extra numeric columns to keep (for logistic models).
    require_outcome : bool
        Whether the ``outcome`` column must be present (fitting) or not (prediction).
    volume_tol : float
        Tolerance on the sum of each DVH's volume fractions.

    Returns
    -------
    CohortTable
        With the SHA-256 of the file bytes (data snapshot hash for provenance).

    Raises
    ------
    CohortCsvError
        ``"<file> line <k>, field <name>: <reason>"``.
    """
    path = Path(source)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    text = raw.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    needed = [*REQUIRED_COLUMNS, *(["outcome"] if require_outcome else []), *covariates]
    missing = [c for c in needed if c not in header]
    if missing:
        raise CohortCsvError(f"{path} line 1: missing column(s) {', '.join(missing)}")
    ids: list[str] = []
    pairs: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
    nfx: list[float] = []
    outcome: list[int] = []
    cov_rows: list[list[float]] = []
    seen: dict[str, int] = {}
    for line_no, row in enumerate(reader, start=2):

        def fail(field: str, reason: str, line: int = line_no) -> CohortCsvError:
            return CohortCsvError(f"{path} line {line}, field {field}: {reason}")

        pid = (row.get("patient_id") or "").strip()
        if not pid:
            raise fail("patient_id", "empty")
        if pid in seen:
            raise fail("patient_id", f"duplicate of line {seen[pid]}")
        seen[pid] = line_no
        nfx.append(_parse_fractions(row.get("n_fractions"), fail))
        dose, vol = _parse_dvh(row.get("dvh") or "", fail)
        problems = dvh_problems(dose, vol, volume_tol)
        if problems:
            raise fail("dvh", "; ".join(problems))
        pairs.append((dose, vol))
        if require_outcome:
            outcome.append(_parse_outcome(row.get("outcome"), fail))
        cov_rows.append([_parse_number(row.get(n), n, fail) for n in covariates])
        ids.append(pid)
    if not ids:
        raise CohortCsvError(f"{path}: no patient rows")
    dvhs = DVHSet.from_dvhs(pairs, np.array(nfx), volume_tol)
    return CohortTable(
        patient_ids=ids,
        dvhs=dvhs,
        outcome=np.array(outcome, dtype=np.int64) if require_outcome else None,
        covariates=pd.DataFrame(cov_rows, columns=list(covariates)),
        sha256=digest,
    )


def _parse_outcome(cell: str | None, fail: Callable[[str, str], CohortCsvError]) -> int:
    value = (cell or "").strip()
    if value not in {"0", "1"}:
        raise fail("outcome", f"must be 0 or 1, got {value!r}")
    return int(value)


def _parse_number(
    cell: str | None, name: str, fail: Callable[[str, str], CohortCsvError]
) -> float:
    text = (cell or "").strip()
    try:
        number = float(text)
    except ValueError:
        raise fail(name, f"not a number: {text!r}") from None
    if not math.isfinite(number):
        raise fail(name, f"not a finite number: {text!r}")
    return number


def _parse_fractions(
    cell: str | None, fail: Callable[[str, str], CohortCsvError]
) -> float:
    text = (cell or "").strip()
    if not text:
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        raise fail("n_fractions", f"not a number: {text!r}") from None
    if not (value > 0 and value == int(value)):
        raise fail("n_fractions", f"must be a positive integer, got {text!r}")
    return value


def _parse_dvh(
    cell: str, fail: Callable[[str, str], CohortCsvError]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    text = cell.strip()
    if not text:
        raise fail("dvh", "empty")
    dose: list[float] = []
    vol: list[float] = []
    for k, pair in enumerate(text.split("|"), start=1):
        parts = pair.split(";")
        if len(parts) != 2:  # noqa: PLR2004
            raise fail(
                "dvh", f"bin {k}: expected 'dose_gy;volume_fraction', got {pair!r}"
            )
        try:
            dose.append(float(parts[0]))
            vol.append(float(parts[1]))
        except ValueError:
            raise fail("dvh", f"bin {k}: not a number in {pair!r}") from None
    return np.array(dose), np.array(vol)


def format_dvh(dose_gy: Sequence[float], volume_fraction: Sequence[float]) -> str:
    """Format one DVH in the CSV notation (used by tests and the simulator CLI)."""
    return "|".join(
        f"{d:.6g};{v:.8g}"
        for d, v in zip(dose_gy, volume_fraction, strict=True)
        if v > 0
    )
