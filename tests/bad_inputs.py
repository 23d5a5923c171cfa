"""Bad inputs for the corpus and fuzz tests (issue 13), built with production writers.

DICOM comes from the phantom writer (:mod:`etl.phantom`) and pydicom's bundled RT
files; FHIR from :mod:`instruments.fhir` and :mod:`instruments.fhir_adverse_event`.
Every builder writes into a folder of the caller and returns the path.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path
from typing import Any

import pydicom
from pydicom.data import get_testdata_file
from sqlalchemy import Engine, func, inspect, select, table

from instruments.fhir import PromResponse, SubjectIdentifier, questionnaire_response
from instruments.fhir_adverse_event import ToxicityGrading, adverse_event
from tests.etl.ingest_corpus import write_patient

HOSPITAL = "urn:oid:2.16.528.1.1007.3.3"
M3_DAY = datetime.date(2024, 5, 20)
CSV_HEADER = "patient_id,timepoint,assessed_on,ctcae_version,term,grade,attribution\n"
#: Tables a refused or held input may change: the audit trail (refusals are
#: audited), the quarantine (holds) and the ingest bookkeeping.
BOOKKEEPING = frozenset(
    {"audit_record", "quarantine_item", "ingest_run", "ingest_file", "app_session"}
)


def row_counts(engine: Engine) -> dict[str, int]:
    """Row count of every table of the database but the bookkeeping ones."""
    names = sorted(set(inspect(engine).get_table_names()) - BOOKKEEPING)
    with engine.connect() as c:
        return {
            n: int(c.scalar(select(func.count()).select_from(table(n))) or 0)
            for n in names
        }


def prom_resource(
    patient: str, answer: int = 1, authored: datetime.date = M3_DAY, rid: str = "a"
) -> dict[str, Any]:
    """A QLQ-C30 QuestionnaireResponse: q1-q5 = ``answer``, every other item 2."""
    values: dict[int, int | None] = dict.fromkeys(range(1, 31), 2)
    values.update(dict.fromkeys(range(1, 6), answer))
    return questionnaire_response(
        PromResponse(
            resource_id=rid,
            instrument="QLQ-C30",
            subject=SubjectIdentifier(HOSPITAL, patient),
            authored=datetime.datetime.combine(
                authored, datetime.time(10), datetime.UTC
            ),
            values=values,
            timepoint="m3",
        )
    )


def toxicity_resource(
    patient: str, grade: int = 2, assessed_on: datetime.date = M3_DAY
) -> dict[str, Any]:
    """A CTCAE v5 'Dry mouth' AdverseEvent at m3."""
    return adverse_event(
        ToxicityGrading(
            resource_id="t1",
            subject=SubjectIdentifier(HOSPITAL, patient),
            version="5.0",
            term="Dry mouth",
            grade=grade,
            assessed_on=assessed_on,
            attribution="probable",
            timepoint="m3",
        )
    )


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def deep_json(path: Path, levels: int = 3000) -> Path:
    """A QuestionnaireResponse whose ``item`` is nested ``levels`` arrays deep."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = '{"resourceType": "QuestionnaireResponse", "item": '
    path.write_text(head + "[" * levels + "]" * levels + "}", encoding="utf-8")
    return path


def phantom_folder(folder: Path, patient: str, seed: int) -> Path:
    """A small phantom patient (CT, RTSTRUCT, RTPLAN, RTDOSE) without truth.json."""
    write_patient(folder, patient, seed)
    (folder / "truth.json").unlink()
    return folder


def set_attribute(path: Path, keyword: str, value: Any) -> None:
    """Rewrite one top-level attribute of a DICOM file (None deletes it)."""
    ds = pydicom.dcmread(path)
    if value is None:
        delattr(ds, keyword)
    else:
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)


def pydicom_rt_files(folder: Path) -> list[Path]:
    """Copies of pydicom's bundled rtplan.dcm, rtdose.dcm and rtstruct.dcm."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in ("rtplan.dcm", "rtdose.dcm", "rtstruct.dcm"):
        target = folder / name
        shutil.copyfile(str(get_testdata_file(name)), target)
        out.append(target)
    return out


def pydicom_course(folder: Path, patient: str) -> Path:
    """pydicom's rtdose.dcm/rtstruct.dcm made into one course dose and its structures.

    The dose becomes an absolute PLAN dose (it is a RELATIVE beam dose, scaled here
    to a maximum of 1.254 Gy) in the frame of reference of the structure set; the
    plan reference is dropped. Imported as is, it loads.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ss = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    dose = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    dose.DoseUnits, dose.DoseSummationType = "GY", "PLAN"
    dose.PatientID = ss.PatientID = patient
    frame = ss.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID
    dose.FrameOfReferenceUID = frame
    del dose.ReferencedRTPlanSequence
    dose.DoseGridScaling = "1e-6"
    ss.StudyDate = dose.StudyDate
    dose.save_as(folder / "rtdose.dcm")
    ss.save_as(folder / "rtstruct.dcm")
    return folder
