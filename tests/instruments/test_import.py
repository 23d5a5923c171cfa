"""`prom import` / `toxicity import`: pseudonymisation, date offset, all-or-nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from cohort.centres import add_centre
from cohort.clinical_import import (
    ImportFailedError,
    import_proms,
    import_toxicity,
)
from etl.deid.keys import CentreKey, new_key, write_key
from etl.deid.pseudonymise import date_offset_days, pseudonym
from instruments.fhir import (
    PSEUDONYM_SYSTEM,
    PromResponse,
    SubjectIdentifier,
    bundle,
    questionnaire_response,
)
from instruments.fhir_adverse_event import ToxicityGrading, adverse_event
from instruments.store import read_prom_scores, read_toxicity
from omop import cdm
from omop.cohort_tables import AuditRecord

HOSPITAL_SYSTEM = "urn:oid:2.16.528.1.1007.3.3"


def _setup(
    session: Session, code: str, hospital_ids: list[str]
) -> tuple[CentreKey, dict[str, int]]:
    key = new_key(code)
    site = add_centre(session, code)
    persons = {}
    for hid in hospital_ids:
        person = cdm.Person(
            gender_concept_id=8507,
            year_of_birth=1955,
            race_concept_id=0,
            ethnicity_concept_id=0,
            care_site_id=site.care_site_id,
            person_source_value=pseudonym(key, hid),
        )
        session.add(person)
        session.flush()
        persons[hid] = int(person.person_id)
    return key, persons


def _qr(rid: str, hid: str, timepoint: str | None = "m3") -> dict:
    values: dict[int, int | None] = dict.fromkeys(range(1, 31), 2)
    return questionnaire_response(
        PromResponse(
            resource_id=rid,
            instrument="QLQ-C30",
            subject=SubjectIdentifier(HOSPITAL_SYSTEM, hid),
            authored=datetime(2024, 2, 1, 10, 0, tzinfo=UTC),
            values=values,
            timepoint=timepoint,
        )
    )


def test_import_proms_pseudonymises_and_shifts(session: Session, tmp_path: Path):
    key, persons = _setup(session, "IMP01", ["H-1", "H-2"])
    path = tmp_path / "qr.json"
    path.write_text(json.dumps(bundle([_qr("a", "H-1"), _qr("b", "H-2", None)])))
    summary = import_proms(
        session, key, "IMP01", path, actor="admin", default_timepoint="baseline"
    )
    assert summary.outcomes == {"stored": 2}
    frame = read_prom_scores(session, persons.values()).set_index("person_id")
    offset = date_offset_days(key, "H-1")
    assert frame.loc[persons["H-1"], "completed_on"] == date(2024, 2, 1) + timedelta(
        days=offset
    )
    assert frame.loc[persons["H-1"], "timepoint"] == "m3"
    assert frame.loc[persons["H-2"], "timepoint"] == "baseline"
    # RS = 2 everywhere: functional (1 - 1/3) * 100, symptoms 1/3 * 100
    assert frame.loc[persons["H-1"], "PF2"] == pytest.approx(200 / 3)
    # again: unchanged
    again = import_proms(
        session, key, "IMP01", path, actor="admin", default_timepoint="baseline"
    )
    assert again.outcomes == {"unchanged": 2}
    audits = session.scalar(
        select(func.count()).where(AuditRecord.action == "prom.import")
    )
    assert audits >= 2


def test_import_proms_unknown_patient_rejects_whole_file(session: Session, tmp_path):
    key, persons = _setup(session, "IMP02", ["H-1"])
    path = tmp_path / "qr.json"
    path.write_text(json.dumps(bundle([_qr("a", "H-1"), _qr("b", "H-404")])))
    savepoint = session.begin_nested()
    with pytest.raises(ImportFailedError) as info:
        import_proms(session, key, "IMP02", path, actor="admin")
    savepoint.rollback()
    assert any(
        "QuestionnaireResponse/b: unknown patient" in p for p in info.value.problems
    )
    assert "H-404" not in " ".join(info.value.problems)
    n = session.scalar(
        select(func.count()).where(cdm.SurveyConduct.person_id == persons["H-1"])
    )
    assert n == 0


def test_import_proms_pseudonym_without_register_entry(session: Session, tmp_path):
    key, _ = _setup(session, "IMP03", ["H-1"])
    qr = _qr("a", "H-1")
    qr["subject"] = {
        "identifier": {"system": PSEUDONYM_SYSTEM, "value": pseudonym(key, "H-1")}
    }
    path = tmp_path / "qr.json"
    path.write_text(json.dumps(qr))
    with pytest.raises(ImportFailedError, match="no date offset for pseudonym"):
        import_proms(session, key, "IMP03", path, actor="admin")


def test_import_proms_bad_fhir(session: Session, tmp_path):
    key, _ = _setup(session, "IMP04", ["H-1"])
    path = tmp_path / "qr.json"
    path.write_text("{broken")
    with pytest.raises(ImportFailedError, match="malformed JSON"):
        import_proms(session, key, "IMP04", path, actor="admin")


def test_import_toxicity_csv_and_fhir(session: Session, tmp_path):
    key, persons = _setup(session, "IMP05", ["H-1", "H-2"])
    path = tmp_path / "tox.csv"
    path.write_text(
        "patient_id,timepoint,assessed_on,ctcae_version,term,grade,attribution\n"
        "H-1,m3,2024-05-01,5.0,Dry mouth,2,probable\n"
        "H-1,m3,2024-05-01,5.0,Dysphagia,0,\n"
        "H-2,eot,2024-04-10,6.0,Dermatitis radiation,1,definite\n"
    )
    summary = import_toxicity(session, key, "IMP05", path, actor="admin")
    assert summary.outcomes == {"stored": 3}
    frame = read_toxicity(session, persons.values())
    one = frame[frame.person_id == persons["H-1"]].sort_values("term")
    assert one["term"].tolist() == ["Dry mouth", "Dysphagia"]
    assert one["grade"].tolist() == [2, 0]
    shifted = date(2024, 5, 1) + timedelta(days=date_offset_days(key, "H-1"))
    assert set(one["assessed_on"]) == {shifted}
    grading = ToxicityGrading(
        "ae-9",
        SubjectIdentifier(HOSPITAL_SYSTEM, "H-2"),
        "5.0",
        "Pneumonitis",
        3,
        date(2024, 6, 1),
        "possible",
        "m6",
    )
    fhir_path = tmp_path / "ae.json"
    fhir_path.write_text(json.dumps(adverse_event(grading)))
    assert import_toxicity(
        session, key, "IMP05", fhir_path, actor="admin"
    ).outcomes == {"stored": 1}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "H-1,m3,2024-05-01,5.0,Alopecia,3,",
            "line 2: CTCAE v5.0 defines grades 1\u20132",
        ),
        ("H-1,m3,2024-05-01,5.0,Xerostomia,1,", "line 2: CTCAE v5.0 has no term"),
        ("H-1,m3,01/05/2024,5.0,Dry mouth,1,", "line 2 assessed_on: '01/05/2024'"),
        ("H-1,m3,2024-05-01,4.0,Dry mouth,1,", "line 2: unknown CTCAE version"),
        ("H-1,m3,2024-05-01,5.0,Dry mouth,1,maybe", "line 2: unknown attribution"),
        ("H-9,m3,2024-05-01,5.0,Dry mouth,1,", "unknown patient"),
        ("H-1,m99,2024-05-01,5.0,Dry mouth,1,", "no concept for RTC Timepoint 'm99'"),
    ],
)
def test_import_toxicity_bad_rows(session: Session, tmp_path, row, message):
    key, _ = _setup(session, "IMP06", ["H-1"])
    path = tmp_path / "tox.csv"
    path.write_text(
        "patient_id,timepoint,assessed_on,ctcae_version,term,grade,attribution\n"
        + row
        + "\n"
    )
    with pytest.raises(ImportFailedError) as info:
        import_toxicity(session, key, "IMP06", path, actor="admin")
    assert any(message in p for p in info.value.problems), info.value.problems


def test_cli_prom_import_end_to_end(tmp_path: Path):
    """The command as a user runs it: its own process, a fresh SQLite database."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    env = {**os.environ, "RTCOHORT_DATABASE_URL": url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rtcohort.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    assert run("db", "upgrade").returncode == 0
    key = new_key("CLI01")
    key_file = write_key(key, tmp_path / "cli01.key")
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        _setup_with_key(session, key, "CLI01", "H-7")
    path = tmp_path / "qr.json"
    path.write_text(json.dumps(_qr("z", "H-7")))
    ok = run(
        "prom", "import", str(path), "--centre", "CLI01", "--key-file", str(key_file)
    )
    assert ok.returncode == 0, ok.stderr
    assert "imported 1 questionnaire(s) for 1 patient(s): 1 stored" in ok.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_qr("y", "H-404")))
    rejected = run(
        "prom", "import", str(bad), "--centre", "CLI01", "--key-file", str(key_file)
    )
    assert rejected.returncode == 2
    assert "rejected, nothing stored" in rejected.stderr
    assert "H-404" not in rejected.stderr
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(cdm.SurveyConduct)) == 1
    engine.dispose()


def _setup_with_key(session: Session, key: CentreKey, code: str, hid: str) -> None:
    site = add_centre(session, code)
    session.add(
        cdm.Person(
            gender_concept_id=8507,
            year_of_birth=1950,
            race_concept_id=0,
            ethnicity_concept_id=0,
            care_site_id=site.care_site_id,
            person_source_value=pseudonym(key, hid),
        )
    )
