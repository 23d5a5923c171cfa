"""Write a simulated cohort as the files a centre sends: DICOM-RT and FHIR.

Layout under ``out_dir``::

    <centre>/dicom/<hospital id>/   CT, RTSTRUCT, RTPLAN, RTDOSE, truth.json
                                    (etl.phantom.write, local structure names)
    <centre>/proms.json             FHIR Bundle of QuestionnaireResponses (QLQ-C30)
    <centre>/toxicity.json          FHIR Bundle of AdverseEvents (CTCAE v5.0)
    <centre>/consent.csv            hospital_id, year_of_birth, sex, site, state, date,
                                    stage (consented patients)
    <centre>/followup.csv           hospital_id, event (death, withdrawal), date: the
                                    enrolled patients' deaths (before any withdrawal)
                                    and withdrawals, for ``followup record --death``
                                    and ``consent withdraw`` (no erasure)
    mapping_rules.csv               the centres' local names -> TG-263 (for
                                    ``rtcohort mapping import``; the patient-level
                                    variants and typos are left for the unmapped list)

The FHIR subjects are the hospital identifiers (system :data:`HOSPITAL_ID_SYSTEM`)
and the dates are real: ``prom import`` / ``toxicity import`` pseudonymise and shift
them with the centre key, as for any centre's export.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from cohort.simulate.national import NationalCohort, NationalPatient
from cohort.simulate.outcomes import timepoint_date
from cohort.simulate.practice import local_name
from etl.phantom.write import write_phantom
from instruments.fhir import PromResponse, SubjectIdentifier
from instruments.fhir.read import bundle
from instruments.fhir.response import questionnaire_response
from instruments.fhir_adverse_event import ToxicityGrading, adverse_event_bundle
from omop.private_files import make_private_dirs

__all__ = [
    "HOSPITAL_ID_SYSTEM",
    "write_centre_files",
    "write_cohort_files",
    "write_dicom_files",
    "written_folders",
]

#: FHIR identifier system of the simulated hospital identifiers.
HOSPITAL_ID_SYSTEM = "urn:rtcohort:simulated-hospital-id"


def _subject(patient: NationalPatient) -> SubjectIdentifier:
    return SubjectIdentifier(HOSPITAL_ID_SYSTEM, patient.hospital_id)


def _proms(patient: NationalPatient) -> list[PromResponse]:
    return [
        PromResponse(
            resource_id=f"sim-{patient.hospital_id}-qlq-c30-{tp}",
            instrument="QLQ-C30",
            subject=_subject(patient),
            authored=timepoint_date(patient.rt_start, patient.rt_end, tp),
            values=dict(answers),
            timepoint=tp,
        )
        for tp, answers in patient.proms.items()
    ]


def _gradings(patient: NationalPatient) -> list[ToxicityGrading]:
    out = []
    for term, grades in patient.grades.items():
        slug = term.lower().replace(" ", "-")
        for tp, grade in grades.items():
            out.append(
                ToxicityGrading(
                    resource_id=f"sim-{patient.hospital_id}-{slug}-{tp}",
                    subject=_subject(patient),
                    version="5.0",
                    term=term,
                    grade=grade,
                    assessed_on=timepoint_date(patient.rt_start, patient.rt_end, tp),
                    timepoint=tp,
                )
            )
    return out


def _write_consent(path: Path, patients: list[NationalPatient]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(
            ["hospital_id", "year_of_birth", "sex", "site", "state", "date", "stage"]
        )
        for p in patients:
            state = "consented" if p.consented else "declined"
            writer.writerow(
                [p.hospital_id, p.year_of_birth, p.sex, p.site, state,
                 p.consent_date.isoformat(), (p.consented and p.stage) or ""]
            )  # fmt: skip


def _write_followup(path: Path, patients: list[NationalPatient]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["hospital_id", "event", "date"])
        for p in patients:
            if not p.consented:
                continue
            withdrawn = p.withdrawn_on
            if p.died_on is not None and (withdrawn is None or p.died_on < withdrawn):
                writer.writerow([p.hospital_id, "death", p.died_on.isoformat()])
            if withdrawn is not None:
                writer.writerow([p.hospital_id, "withdrawal", withdrawn.isoformat()])


def _write_rules(path: Path, cohort: NationalCohort) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["centre", "pattern", "kind", "tg263_name"])
        seen: set[tuple[str, str]] = set()
        for p in cohort.patients:
            practice = next(c for c in cohort.practices if c.code == p.centre)
            for tg in p.local_names:
                local = local_name(tg, practice.naming)
                if local != tg and (p.centre, local) not in seen:
                    seen.add((p.centre, local))
                    writer.writerow([p.centre, local, "exact", tg])


def _write_patient(
    patient: NationalPatient, out: Path, seed: int, truth_samples: int
) -> None:
    write_phantom(
        out / patient.centre / "dicom" / patient.hospital_id,
        patient.spec(truth_samples=truth_samples),
        patient_id=patient.hospital_id,
        seed=seed,
        study_date=patient.rt_start,
    )


def _complete(folder: Path) -> bool:
    """Whether a patient's folder is written in full (its truth.json comes last)."""
    return (folder / "truth.json").is_file()


def _written(patient: NationalPatient, out: Path) -> bool:
    """Whether a previous run wrote the patient."""
    return _complete(out / patient.centre / "dicom" / patient.hospital_id)


def written_folders(dicom_dir: Path) -> set[Path]:
    """Return the patient folders under a centre's ``dicom_dir`` written in full.

    A folder without its ``truth.json`` is still being written (or was cut off) and
    must not be sent. A missing ``dicom_dir`` holds none.
    """
    if not dicom_dir.is_dir():
        return set()
    return {f for f in dicom_dir.iterdir() if _complete(f)}


def _result(fut: Future[None], patient: NationalPatient) -> None:
    """Raise a worker's failure naming the patient (a dead worker too)."""
    try:
        fut.result()
    except Exception as exc:
        raise RuntimeError(
            f"simulate: writing the DICOM-RT of {patient.hospital_id} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def write_centre_files(cohort: NationalCohort, out_dir: str | Path) -> Path:
    """Write each centre's FHIR, consent and follow-up files and the naming rules.

    Everything :func:`write_cohort_files` writes but the DICOM-RT (which takes the
    time): what a centre records does not depend on the images.
    """
    out = make_private_dirs(out_dir)
    by_centre: dict[str, list[NationalPatient]] = {}
    for patient in cohort.patients:
        by_centre.setdefault(patient.centre, []).append(patient)
    for centre, patients in by_centre.items():
        folder = make_private_dirs(out / centre)
        proms = [questionnaire_response(r) for p in patients for r in _proms(p)]
        (folder / "proms.json").write_text(json.dumps(bundle(proms)), encoding="utf-8")
        gradings = [g for p in patients for g in _gradings(p)]
        (folder / "toxicity.json").write_text(
            json.dumps(adverse_event_bundle(gradings)), encoding="utf-8"
        )
        _write_consent(folder / "consent.csv", patients)
        _write_followup(folder / "followup.csv", patients)
    _write_rules(out / "mapping_rules.csv", cohort)
    return out


class _Centres:
    """Calls ``written(centre)`` once all of a centre's patients are written."""

    def __init__(
        self, patients: list[NationalPatient], written: Callable[[str], None] | None
    ) -> None:
        self.left: dict[str, int] = {}
        for p in patients:
            self.left[p.centre] = self.left.get(p.centre, 0) + 1
        self.written = written

    def start(self, centres: list[str]) -> None:
        for centre in centres:  # nothing to write there (a resumed run)
            if centre not in self.left and self.written is not None:
                self.written(centre)

    def done(self, patient: NationalPatient) -> None:
        self.left[patient.centre] -= 1
        if not self.left[patient.centre] and self.written is not None:
            self.written(patient.centre)


def write_cohort_files(
    cohort: NationalCohort,
    out_dir: str | Path,
    *,
    seed: int = 1,
    truth_samples: int = 4096,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    centre_written: Callable[[str], None] | None = None,
) -> Path:
    """Write each centre's FHIR and consent files, then every patient's DICOM-RT.

    :func:`write_centre_files`, then :func:`write_dicom_files` (its options).

    Returns
    -------
    Path
        ``out_dir``.
    """
    write_centre_files(cohort, out_dir)
    return write_dicom_files(
        cohort, out_dir, seed=seed, truth_samples=truth_samples, progress=progress,
        workers=workers, centre_written=centre_written,
    )  # fmt: skip


def write_dicom_files(
    cohort: NationalCohort,
    out_dir: str | Path,
    *,
    seed: int = 1,
    truth_samples: int = 4096,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    centre_written: Callable[[str], None] | None = None,
) -> Path:
    """Write every patient's DICOM-RT, centre by centre, and nothing else.

    Centres in their order in ``cohort.patients``; ``centre_written(centre)`` is
    called as soon as all of a centre's patients are written (a pipeline may send
    them while the next centre is written, and read the centres' other files,
    which this never rewrites). ``workers > 1`` writes the patients' DICOM-RT in
    that many processes; the files are the same (each patient's phantom depends on
    its own spec and ``seed`` only). A patient whose folder already holds its
    ``truth.json`` (written last) is not written again, so an interrupted run
    resumes where it stopped.

    Returns
    -------
    Path
        ``out_dir``.
    """
    out = make_private_dirs(out_dir)
    total = len(cohort.patients)
    order = list(dict.fromkeys(p.centre for p in cohort.patients))
    for centre in order:  # private, as write_centre_files makes them
        make_private_dirs(out / centre / "dicom")
    todo = sorted(  # centre by centre (stable: the cohort's order within one)
        (p for p in cohort.patients if not _written(p, out)),
        key=lambda p: order.index(p.centre),
    )
    centres = _Centres(todo, centre_written)
    centres.start(order)
    done = total - len(todo)
    if progress is not None and done:
        progress(done, total)
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {
                pool.submit(_write_patient, p, out, seed, truth_samples): p
                for p in todo
            }
            for fut in as_completed(futures):
                _result(fut, futures[fut])
                centres.done(futures[fut])
                done += 1
                if progress is not None:
                    progress(done, total)
    else:
        for patient in todo:
            _write_patient(patient, out, seed, truth_samples)
            centres.done(patient)
            done += 1
            if progress is not None:
                progress(done, total)
    return out
