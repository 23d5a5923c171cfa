"""Data-quality checks: the OHDSI DataQualityDashboard v5.4 checks, run in Python.

The DQD control files (``data/``) become SQL per table, field and concept
(:mod:`omop.quality.dqd`); our radiotherapy checks (:mod:`omop.quality.rt_checks`) have
the same form. :func:`run_quality` runs them all and returns a
:class:`~omop.quality.report.QualityReport` that writes DQD's JSON result layout.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from omop.quality.checks import Check
from omop.quality.control import load_control, load_known_failures
from omop.quality.dqd import dqd_checks
from omop.quality.errors import ControlFileError, QualityError
from omop.quality.report import QualityReport, cdm_source_metadata
from omop.quality.rt_checks import rt_checks
from omop.quality.run import CheckResult, run_checks
from omop.quality.timeout import statement_timeout

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "Check",
    "CheckResult",
    "ControlFileError",
    "QualityError",
    "QualityReport",
    "all_checks",
    "run_quality",
]


#: Time limit of one statement of a check (the slowest check at 29,000 patients
#: took 35 s on PostgreSQL; see benchmarks/README.md).
DEFAULT_TIMEOUT_SECONDS = 300.0


def all_checks(backend: str, control_dir: Path | None = None) -> list[Check]:
    """Return the DQD checks for our schema followed by our own checks.

    Raises
    ------
    ControlFileError
        A control file is missing or malformed (the message names file and line).
    """
    return [*dqd_checks(load_control(control_dir), backend), *rt_checks(backend)]


def run_quality(
    session: Session,
    *,
    control_dir: Path | None = None,
    known_failures: Path | None = None,
    timeout_seconds: float | None = DEFAULT_TIMEOUT_SECONDS,
) -> QualityReport:
    """Run every check against the session's database; never commits.

    Each check runs in its own savepoint; SQL that fails, or runs longer than
    ``timeout_seconds`` per statement (None or 0: no limit), is reported as that
    check's error. Failures listed in the known-failures file are reported, not
    failed.
    """
    backend = session.get_bind().dialect.name
    checks = all_checks(backend, control_dir)
    known = load_known_failures(known_failures)
    started = datetime.datetime.now(datetime.UTC)
    with statement_timeout(session, timeout_seconds):
        results = run_checks(session, checks, known)
    ended = datetime.datetime.now(datetime.UTC)
    return QualityReport(results, started, ended, cdm_source_metadata(session))
