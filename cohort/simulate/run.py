"""``rtcohort simulate``: simulate, then write files, the database and the truth.

:func:`run_simulation` is what the command calls: it validates first (nothing is
written on bad input), simulates (:func:`~cohort.simulate.national.simulate_national`),
writes DICOM-RT and FHIR (:mod:`cohort.simulate.files`) and/or loads OMOP with the
bulk path (:func:`cohort.simulate.bulk_load.load_cohort_bulk`: the owners' row builders
and the bulk loader, one transaction per batch of whole patients), and writes the
truth JSON. :func:`load_cohort` loads through the owners' per-row writers
(:mod:`cohort.simulate.load`); it is the reference the bulk path is tested against.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from cohort.simulate.bulk_load import load_cohort_bulk
from cohort.simulate.files import write_cohort_files
from cohort.simulate.load import LoadCounts, load_patient
from cohort.simulate.national import NationalCohort, simulate_national
from cohort.simulate.params import SimulationParams
from etl.deid.keys import CentreKey
from etl.mapping.naming import current_rules, ensure_default_rules
from omop.filestore import FileStore

__all__ = ["SimulationReport", "load_cohort", "run_simulation"]

#: ``(step, done, total)`` progress callback.
Progress = Callable[[str, int, int], None]


@dataclass
class SimulationReport:
    """What :func:`run_simulation` did."""

    cohort: NationalCohort
    truth_path: Path
    dicom_dir: Path | None = None
    counts: LoadCounts | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def load_rate_patients_per_s(self) -> float | None:
        """Patients written to the database per second (None without ``--into-db``)."""
        took = self.seconds.get("into_db")
        if self.counts is None or not took:
            return None
        return (self.counts.persons + self.counts.skipped) / took


def load_cohort(
    session_factory: sessionmaker[Session],
    cohort: NationalCohort,
    *,
    keys: Mapping[str, CentreKey],
    store: FileStore,
    batch: int = 50,
    progress: Progress | None = None,
) -> LoadCounts:
    """Load every patient through the per-row writers, ``batch`` patients a commit."""
    counts = LoadCounts()
    with session_factory.begin() as session:
        ensure_default_rules(session)
    with session_factory() as session:
        rules = current_rules(session)
    patients = cohort.patients
    for start in range(0, len(patients), batch):
        with session_factory.begin() as session:
            for patient in patients[start : start + batch]:
                load_patient(
                    session, patient, keys=keys, store=store, rules=rules,
                    seed=cohort.params.seed, counts=counts,
                )  # fmt: skip
        if progress is not None:
            progress("into-db", min(start + batch, len(patients)), len(patients))
    return counts


def run_simulation(
    params: SimulationParams,
    *,
    truth_path: Path,
    dicom_dir: Path | None = None,
    session_factory: sessionmaker[Session] | None = None,
    keys: Mapping[str, CentreKey] | None = None,
    store: FileStore | None = None,
    samples: int = 4096,
    progress: Progress | None = None,
) -> SimulationReport:
    """Simulate and write what was asked for.

    Parameters
    ----------
    params
        Validated parameters.
    truth_path
        Where the truth JSON goes.
    dicom_dir
        Write DICOM-RT and FHIR here (``--dicom``).
    session_factory, keys, store
        Load OMOP (``--into-db``) with the centres' keys and the file store.
    samples
        RQMC points per structure for the DVHs.
    """
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    step = (lambda d, t: progress("simulate", d, t)) if progress else None
    cohort = simulate_national(params, samples=samples, progress=step)
    seconds["simulate"] = time.perf_counter() - t0
    report = SimulationReport(cohort, truth_path, dicom_dir, seconds=seconds)
    if dicom_dir is not None:
        t0 = time.perf_counter()
        files = (lambda d, t: progress("dicom", d, t)) if progress else None
        write_cohort_files(cohort, dicom_dir, seed=params.seed, progress=files)
        seconds["dicom"] = time.perf_counter() - t0
    if session_factory is not None:
        if keys is None or store is None:
            raise ValueError("into-db needs the centres' keys and the file store")
        t0 = time.perf_counter()
        report.counts = load_cohort_bulk(
            session_factory, cohort, keys=keys, store=store, progress=progress
        )
        seconds["into_db"] = time.perf_counter() - t0
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(cohort.truth(), indent=1), encoding="utf-8")
    return report
