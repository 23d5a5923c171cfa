"""Corrections, not overwrites; plausible dates and identities (issue 13, parts 2-3).

Through the production paths on both backends: ``cohort.clinical_import`` (the
imports the CLI and the web pages call) and the CLI itself (typer CliRunner).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from cohort_helpers import enrol, rt_course, user
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cohort import service
from cohort.centres import add_centre
from cohort.clinical_import import ImportFailedError, import_proms, import_toxicity
from cohort.errors import InvalidInputError
from cohort.schedule import Status, schedule
from cohort.vital import record_death
from etl.deid.identity import identify
from etl.deid.keys import CentreKey, load_key, new_key
from etl.deid.pseudonymise import date_offset_days, pseudonym
from etl.errors import PatientIdError
from instruments.fhir import PromResponse, SubjectIdentifier, questionnaire_response
from instruments.store import (
    AssessmentKind,
    assessment_history,
    read_prom_answers,
    read_prom_scores,
    read_survey_timings,
    read_toxicity,
)
from instruments.store.versions import Rows, version_rows
from omop import cdm
from omop.assessment_tables import AssessmentVersion
from omop.engine import make_engine

D = datetime.date
HOSPITAL = "urn:oid:2.16.528.1.1007.3.3"
CSV_HEADER = "patient_id,timepoint,assessed_on,ctcae_version,term,grade,attribution\n"
# Real (unshifted) dates: RT 2024-01-08 .. 2024-02-16; m3 target 2024-05-17 +- 30 d.
RT_START, RT_END, M3_DAY = D(2024, 1, 8), D(2024, 2, 16), D(2024, 5, 20)
TODAY = D(2024, 6, 30)


def _patient(session: Session, code: str, hid: str = "H-1") -> tuple[CentreKey, int]:
    key = new_key(code)
    site = add_centre(session, code)
    user(session, "dm", "data_manager", [code])
    offset = date_offset_days(key, hid)
    shift = datetime.timedelta(days=offset)
    pid = enrol(
        session,
        site,
        pseudonym(key, hid),
        day=D(2024, 1, 2) + shift,
        scopes=["data", "proms"],
    )
    rt_course(session, pid, RT_START + shift, RT_END + shift)
    return key, pid


def _qr_file(path: Path, first_five: int, authored: D = M3_DAY) -> Path:
    """A QLQ-C30 response 'a' at m3: q1-q5 = ``first_five``, every other item 2."""
    values: dict[int, int | None] = dict.fromkeys(range(1, 31), 2)
    values.update(dict.fromkeys(range(1, 6), first_five))
    response = PromResponse(
        resource_id="a",
        instrument="QLQ-C30",
        subject=SubjectIdentifier(HOSPITAL, "H-1"),
        authored=datetime.datetime.combine(authored, datetime.time(10), datetime.UTC),
        values=values,
        timepoint="m3",
    )
    path.write_text(json.dumps(questionnaire_response(response)))
    return path


def _csv(path: Path, *rows: str) -> Path:
    path.write_text(CSV_HEADER + "".join(f"{r}\n" for r in rows))
    return path


def _statuses(session: Session, key: CentreKey, pid: int) -> list[tuple[str, str]]:
    site = session.get(cdm.Person, pid).care_site_id  # type: ignore[union-attr]
    items = schedule(session, site, TODAY, offsets={pid: date_offset_days(key, "H-1")})
    return [(f"{i.timepoint}/{i.kind.value}", i.status.value) for i in items]


def _versions(session: Session, pid: int) -> list[AssessmentVersion]:
    return list(
        session.scalars(
            select(AssessmentVersion)
            .where(AssessmentVersion.person_id == pid)
            .order_by(AssessmentVersion.version)
        )
    )


def _omop_counts(session: Session, pid: int) -> dict[str, int]:
    """Rows of the person per OMOP clinical table an assessment writes."""
    tables = {
        "survey_conduct": cdm.SurveyConduct,
        "observation": cdm.Observation,
        "measurement": cdm.Measurement,
        "condition_occurrence": cdm.ConditionOccurrence,
    }
    return {
        name: int(
            session.scalar(
                select(func.count()).select_from(model).where(model.person_id == pid)
            )
            or 0
        )
        for name, model in tables.items()
    }


def _assert_unflagged_change_refused(
    session: Session,
    key: CentreKey,
    pid: int,
    changed: Path,
    one_version: dict[str, int],
) -> None:
    """A changed PROM without a correction reason is refused; nothing changes."""
    savepoint = session.begin_nested()
    with pytest.raises(ImportFailedError) as info:
        import_proms(session, key, "COR01", changed, actor="dm")
    savepoint.rollback()
    assert info.value.refused
    assert info.value.records == [("qr2.json QuestionnaireResponse/a", "refused")]
    assert "qr2.json QuestionnaireResponse/a: refused" in info.value.problems[0]
    assert _omop_counts(session, pid) == one_version
    assert _versions(session, pid) == []


def _assert_second_version(session: Session, pid: int, first_rows: Rows) -> None:
    """After the first correction: one OMOP version, two stored versions."""
    scores = read_prom_scores(session, [pid])
    assert len(scores) == 1
    # PF2 = items 1-5 all 3 -> RS 3 -> (1 - (3 - 1) / 3) * 100; PF2 of version 1: 100
    assert scores.iloc[0]["PF2"] == pytest.approx(100 / 3)
    answers = read_prom_answers(session, [pid])
    assert len(answers) == 30
    assert set(answers["survey_conduct_id"]) == {scores.iloc[0]["survey_conduct_id"]}
    assert len(read_survey_timings(session, [pid])) == 1
    old, new = _versions(session, pid)
    assert (old.version, old.reason, old.superseded_by) == (1, None, new.version_id)
    assert (new.version, new.reason, new.actor) == (2, "typed q1-q5", "dm")
    assert new.row_id == scores.iloc[0]["survey_conduct_id"]
    assert (new.superseded_by, new.snapshot) == (None, None)
    history = assessment_history(session, pid, "prom", "a")
    assert [(v.version, v.current, v.reason) for v in history] == [
        (1, False, None),
        (2, True, "typed q1-q5"),
    ]
    assert history[0].rows == first_rows  # the snapshot is faithful
    assert history[0].values["answers"]["q1"] == 1.0
    assert history[1].values["answers"]["q1"] == 3.0
    assert history[0].values["scores"]["PF2"] == pytest.approx(100.0)
    assert history[1].values["scores"]["PF2"] == pytest.approx(100 / 3)
    assert history[0].values["timepoint"] == history[1].values["timepoint"] == "m3"


def test_prom_unchanged_refused_then_corrected(session: Session, tmp_path: Path):
    key, pid = _patient(session, "COR01")
    first = _qr_file(tmp_path / "qr.json", 1)
    summary = import_proms(session, key, "COR01", first, actor="dm")
    assert summary.records == [("qr.json QuestionnaireResponse/a", "stored")]
    one_version = _omop_counts(session, pid)
    # 30 answers; every scale and the summary scorable: 15 + 1 scores
    assert one_version["survey_conduct"] == 1
    assert (one_version["observation"], one_version["measurement"]) == (30, 16)
    first_id = int(read_prom_scores(session, [pid]).iloc[0]["survey_conduct_id"])
    first_rows = version_rows(session, AssessmentKind.PROM, pid, first_id)
    before = _statuses(session, key, pid)
    assert ("m3/prom", Status.DONE.value) in before
    again = import_proms(session, key, "COR01", first, actor="dm")
    assert again.outcomes == {"unchanged": 1}

    changed = _qr_file(tmp_path / "qr2.json", 3)
    _assert_unflagged_change_refused(session, key, pid, changed, one_version)

    fixed = import_proms(
        session, key, "COR01", changed, actor="dm", correction_reason="typed q1-q5"
    )
    assert fixed.outcomes == {"corrected": 1}
    assert _omop_counts(session, pid) == one_version  # OMOP holds one version
    _assert_second_version(session, pid, first_rows)
    assert _statuses(session, key, pid) == before

    third_file = _qr_file(tmp_path / "qr3.json", 4)
    third = import_proms(
        session, key, "COR01", third_file, actor="dm", correction_reason="second look"
    )
    assert third.outcomes == {"corrected": 1}
    versions = _versions(session, pid)
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[1].superseded_by == versions[2].version_id
    assert _omop_counts(session, pid) == one_version
    # PF2 items all 4 -> RS 4 -> (1 - 3/3) * 100 = 0
    assert read_prom_scores(session, [pid]).iloc[0]["PF2"] == pytest.approx(0.0)
    history = assessment_history(session, pid, AssessmentKind.PROM, "a")
    assert [(v.version, v.current, v.reason) for v in history] == [
        (1, False, None),
        (2, False, "typed q1-q5"),
        (3, True, "second look"),
    ]
    assert [v.values["answers"]["q5"] for v in history] == [1.0, 3.0, 4.0]
    assert _statuses(session, key, pid) == before
    resend = import_proms(session, key, "COR01", third_file, actor="dm")
    assert resend.outcomes == {"unchanged": 1}
    assert len(assessment_history(session, pid, "prom", "a")) == 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("3000-01-01", "tox.csv line 2: assessed_on 3000-01-01 is in the future"),
        ("1939-12-31", "tox.csv line 2: assessed_on 1939-12-31 is before the year"),
        ("2024-05-21", "tox.csv line 2: assessed_on 2024-05-21 is after the death"),
    ],
)
def test_toxicity_implausible_dates_refused(
    session: Session, tmp_path: Path, row: str, message: str
):
    key, pid = _patient(session, "COR03")
    person = session.get(cdm.Person, pid)
    assert person is not None
    person.year_of_birth = 1940  # the real year, recorded at enrolment
    shift = datetime.timedelta(days=date_offset_days(key, "H-1"))
    record_death(session, pid, D(2024, 5, 20) + shift)  # stored shifted
    path = _csv(tmp_path / "tox.csv", f"H-1,m3,{row},5.0,Dry mouth,1,")
    with pytest.raises(ImportFailedError) as info:
        import_toxicity(session, key, "COR03", path, actor="dm")
    assert any(message in p for p in info.value.problems), info.value.problems
    assert read_toxicity(session, [pid]).empty
    # the day of death itself is plausible
    ok = _csv(tmp_path / "ok.csv", "H-1,m3,2024-05-20,5.0,Dry mouth,1,")
    assert import_toxicity(session, key, "COR03", ok, actor="dm").outcomes == {
        "stored": 1
    }


def test_prom_authored_in_the_future_refused(session: Session, tmp_path: Path):
    key, pid = _patient(session, "COR04")
    tomorrow = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=1)
    assert import_proms(
        session, key, "COR04", _qr_file(tmp_path / "t.json", 1, tomorrow), actor="dm"
    ).outcomes == {"stored": 1}  # time zones ahead of UTC
    path = _qr_file(tmp_path / "f.json", 1, D(3000, 1, 1))
    with pytest.raises(ImportFailedError) as info:
        import_proms(session, key, "COR04", path, actor="dm")
    assert (
        "f.json QuestionnaireResponse/a: authored 3000-01-01 is in the future"
        in info.value.problems
    )
    assert len(read_survey_timings(session, [pid])) == 1


@pytest.mark.parametrize(
    ("patient_id", "message"),
    [
        ("", "patient id: empty"),
        ("   ", "patient id: empty"),
        ("H\x00-1", "patient id: malformed"),
        ("H-1\n2", "patient id: malformed"),
        ("9" * 65, "patient id: 65 characters"),
    ],
)
def test_identify_refuses_empty_or_malformed_ids(patient_id: str, message: str):
    with pytest.raises(PatientIdError, match=message):
        identify(CentreKey("AMS01", bytes(32)), patient_id)


def test_identify_refuses_own_pseudonym_as_patient_id():
    key = CentreKey("AMS01", bytes(32))
    with pytest.raises(PatientIdError, match="is a pseudonym of this centre"):
        identify(key, identify(key, "123456").pseudonym)


def test_consent_pseudonym_of_another_centre_refused(session: Session):
    add_centre(session, "BAD")
    actor = user(session, "dm-bad", "admin", [])

    def record(name: str) -> None:
        service.record_consent(
            session,
            actor,
            centre_code="BAD",
            pseudonym=name,
            state="consented",
            event_date=D(2025, 1, 10),
            year_of_birth=1960,
            sex="F",
        )

    for name in ("OTH-ABCDEFGHIJKLMNOPQRSTUVWXYZ", "BAD-", "BAD", "BAD-x\ny"):
        with pytest.raises(InvalidInputError, match="not of centre BAD"):
            record(name)
    assert session.scalar(select(func.count()).select_from(cdm.Person)) == 0
    record("BAD-ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert session.scalar(select(func.count()).select_from(cdm.Person)) == 1


def test_cli_correct_refused_and_identity_checks(  # type: ignore[no-untyped-def]
    run, fresh_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "c1.key"
    run("centre", "add", "CLC")
    run("keys", "new", "--centre", "CLC", "--out", str(key_file))
    k = ["--centre", "CLC", "--key-file", str(key_file)]
    person = ["--state", "consented", "--date", "2024-01-02"]
    person += ["--year-of-birth", "1950", "--sex", "F"]
    out = run("consent", "record", "", *k, *person, code=2)
    assert "patient id: empty" in out
    out = run(
        "consent", "record", "--pseudonym", "OTH-ABC", "--centre", "CLC", *person,
        code=2,
    )  # fmt: skip
    assert "pseudonym: not of centre CLC" in out
    run("consent", "record", "H-1", *k, *person)

    tox = _csv(tmp_path / "tox.csv", "H-1,m3,2024-05-20,5.0,Dry mouth,2,probable")
    out = run("toxicity", "import", str(tox), *k)
    assert "1 stored" in out
    assert "tox.csv line 2: stored" in out
    assert "tox.csv line 2: unchanged" in run("toxicity", "import", str(tox), *k)
    regrade = _csv(tmp_path / "re.csv", "H-1,m3,2024-05-20,5.0,Dry mouth,1,probable")
    out = run("toxicity", "import", str(regrade), *k, code=2)
    assert "rejected, nothing stored" in out
    assert "re.csv line 2: refused" in out
    out = run("toxicity", "import", str(regrade), *k, "--correct", "misread", code=0)
    assert "re.csv line 2: corrected" in out
    future = _csv(tmp_path / "fut.csv", "H-1,m6,3000-01-01,5.0,Dry mouth,1,")
    out = run("toxicity", "import", str(future), *k, code=2)
    assert "fut.csv line 2: assessed_on 3000-01-01 is in the future" in out

    qr = _qr_file(tmp_path / "qr.json", 1)
    assert "qr.json QuestionnaireResponse/a: stored" in run(
        "prom", "import", str(qr), *k
    )
    changed = _qr_file(tmp_path / "qr2.json", 2)
    assert "refused" in run("prom", "import", str(changed), *k, code=2)
    out = run("prom", "import", str(changed), *k, "--correct", "typo")
    assert "1 corrected" in out

    engine = make_engine(fresh_url)
    try:
        with Session(engine) as session:
            pid = session.scalar(
                select(cdm.Person.person_id).where(
                    cdm.Person.person_source_value
                    == pseudonym(load_key(key_file), "H-1")
                )
            )
            assert read_toxicity(session, [pid])["grade"].tolist() == [1]
            # 2 answers to q1-q5 -> PF2 (1 - 1/3) * 100
            scores = read_prom_scores(session, [pid])
            assert scores["PF2"].tolist() == [pytest.approx(200 / 3)]
            versions = _versions(session, pid)  # type: ignore[arg-type]
            assert sorted((v.kind, v.version, v.reason or "") for v in versions) == [
                ("prom", 1, ""),
                ("prom", 2, "typo"),
                ("toxicity", 1, ""),
                ("toxicity", 2, "misread"),
            ]
            assert session.scalar(select(func.count()).select_from(cdm.Person)) == 1
    finally:
        engine.dispose()
