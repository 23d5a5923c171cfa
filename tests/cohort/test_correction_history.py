"""Corrections keep one version in OMOP and the history in ``assessment_version``.

Through the production paths on both backends: the CLI (``--correct``) and
``cohort.clinical_import``; erasure through ``service.withdraw(erase=True)``; the
migration that moves superseded versions out of OMOP, downgraded and upgraded again.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from alembic import command
from cohort_helpers import enrol, rt_course, user
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_corrections import (
    RT_END,
    RT_START,
    _csv,
    _omop_counts,
    _patient,
    _qr_file,
    _statuses,
    _versions,
)

from cohort import service
from cohort.centres import add_centre
from cohort.clinical_import import ImportFailedError, import_toxicity
from cohort.schedule import Status
from etl.deid.keys import load_key, new_key
from etl.deid.pseudonymise import date_offset_days, pseudonym
from instruments.store import (
    assessment_history,
    read_toxicity,
    read_toxicity_dates,
    toxicity_key,
)
from omop import cdm
from omop.assessment_tables import AssessmentVersion
from omop.base import Base
from omop.database import alembic_config, current_revision, upgrade
from omop.engine import make_engine

D = datetime.date
DRY_MOUTH = toxicity_key("5.0", "10013781", "m3")


def _history(session: Session, pid: int) -> list[tuple[str, int, bool, str | None]]:
    return [
        (kind, v.version, v.current, v.reason)
        for kind, key in (("toxicity", DRY_MOUTH), ("prom", "a"))
        for v in assessment_history(session, pid, kind, key)
    ]


def test_toxicity_regrade_refused_then_corrected(session: Session, tmp_path: Path):
    key, pid = _patient(session, "COR02")
    first = _csv(tmp_path / "tox.csv", "H-1,m3,2024-05-20,5.0,Dry mouth,2,probable")
    assert import_toxicity(session, key, "COR02", first, actor="dm").outcomes == {
        "stored": 1
    }
    counts = _omop_counts(session, pid)
    assert (counts["condition_occurrence"], counts["observation"]) == (1, 1)
    grading = toxicity_key("5.0", "10013781", "m3")  # Dry mouth
    stored = assessment_history(session, pid, "toxicity", grading)
    assert [(v.version, v.current, v.values["grade"]) for v in stored] == [(1, True, 2)]
    before = _statuses(session, key, pid)
    assert ("m3/toxicity", Status.DONE.value) in before
    assert import_toxicity(session, key, "COR02", first, actor="dm").records == [
        ("tox.csv line 2", "unchanged")
    ]
    regrade = _csv(tmp_path / "re.csv", "H-1,m3,2024-05-20,5.0,Dry mouth,3,probable")
    savepoint = session.begin_nested()
    with pytest.raises(ImportFailedError) as info:
        import_toxicity(session, key, "COR02", regrade, actor="dm")
    savepoint.rollback()
    assert info.value.refused
    assert read_toxicity(session, [pid])["grade"].tolist() == [2]

    summary = import_toxicity(
        session, key, "COR02", regrade, actor="dm", correction_reason="re-examined"
    )
    assert summary.outcomes == {"corrected": 1}
    frame = read_toxicity(session, [pid])
    assert frame["grade"].tolist() == [3]
    assert len(read_toxicity_dates(session, [pid])) == 1
    assert _omop_counts(session, pid) == counts  # one version in OMOP
    old, new = _versions(session, pid)
    assert old.condition_occurrence_id is not None
    assert new.condition_occurrence_id == frame.iloc[0]["condition_occurrence_id"]
    assert (new.reason, old.superseded_by) == ("re-examined", new.version_id)
    history = assessment_history(session, pid, "toxicity", grading)
    assert [(v.version, v.current, v.reason, v.values["grade"]) for v in history] == [
        (1, False, None, 2),
        (2, True, "re-examined", 3),
    ]
    assert history[0].rows == stored[0].rows  # the snapshot is faithful
    assert history[0].values["attribution"] == "probable"
    assert _statuses(session, key, pid) == before

    absent = _csv(tmp_path / "g0.csv", "H-1,m3,2024-05-20,5.0,Dry mouth,0,")
    summary = import_toxicity(
        session, key, "COR02", absent, actor="dm", correction_reason="not present"
    )
    assert summary.outcomes == {"corrected": 1}
    # grade 0 has no condition: the corrected-away grade 3 is gone from OMOP
    assert _omop_counts(session, pid) | {"condition_occurrence": 1} == counts
    assert _omop_counts(session, pid)["condition_occurrence"] == 0
    history = assessment_history(session, pid, "toxicity", grading)
    assert [v.values["grade"] for v in history] == [2, 3, 0]
    assert set(history[1].rows) == {"condition_occurrence", "observation"}
    assert _statuses(session, key, pid) == before
    again = import_toxicity(session, key, "COR02", absent, actor="dm")
    assert again.outcomes == {"unchanged": 1}


def test_erasure_removes_the_version_history(session: Session, tmp_path: Path):
    key = new_key("ERH")
    site = add_centre(session, "ERH")
    user(session, "dm", "data_manager", ["ERH"])
    admin = user(session, "eraser", "admin", [])
    pids = {}
    for hid in ("H-1", "H-2"):
        shift = datetime.timedelta(days=date_offset_days(key, hid))
        pids[hid] = enrol(session, site, pseudonym(key, hid), day=D(2024, 1, 2) + shift)
        rt_course(session, pids[hid], RT_START + shift, RT_END + shift)
    first = _csv(
        tmp_path / "a.csv",
        "H-1,m3,2024-05-20,5.0,Dry mouth,2,",
        "H-2,m3,2024-05-20,5.0,Dry mouth,2,",
    )
    import_toxicity(session, key, "ERH", first, actor="dm")
    regrade = _csv(
        tmp_path / "b.csv",
        "H-1,m3,2024-05-20,5.0,Dry mouth,3,",
        "H-2,m3,2024-05-20,5.0,Dry mouth,1,",
    )
    summary = import_toxicity(
        session, key, "ERH", regrade, actor="dm", correction_reason="re-read"
    )
    assert summary.outcomes == {"corrected": 2}
    rows = select(func.count()).select_from(AssessmentVersion)
    by_person = rows.where(AssessmentVersion.person_id == pids["H-1"])
    assert session.scalar(by_person) == 2
    kept_history = assessment_history(session, pids["H-2"], "toxicity", DRY_MOUTH)
    result = service.withdraw(
        session,
        admin,
        centre_code="ERH",
        pseudonym=pseudonym(key, "H-1"),
        event_date=D(2025, 6, 1),
        erase=True,
    )
    session.flush()
    assert result.report is not None
    assert result.report.rows_by_table["assessment_version"] == 2
    assert session.scalar(by_person) == 0
    assert assessment_history(session, pids["H-1"], "toxicity", DRY_MOUTH) == []
    assert assessment_history(session, pids["H-2"], "toxicity", DRY_MOUTH) == (
        kept_history
    )
    assert [v.values["grade"] for v in kept_history] == [2, 1]


def test_migration_moves_superseded_versions_and_back(  # type: ignore[no-untyped-def]
    run, fresh_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "c.key"
    run("centre", "add", "MIG")
    run("keys", "new", "--centre", "MIG", "--out", str(key_file))
    k = ["--centre", "MIG", "--key-file", str(key_file)]
    run(
        "consent", "record", "H-1", *k, "--state", "consented", "--date",
        "2024-01-02", "--year-of-birth", "1950", "--sex", "F",
    )  # fmt: skip
    tox = _csv(tmp_path / "t.csv", "H-1,m3,2024-05-20,5.0,Dry mouth,2,probable")
    run("toxicity", "import", str(tox), *k)
    regrade = _csv(tmp_path / "r.csv", "H-1,m3,2024-05-20,5.0,Dry mouth,1,probable")
    run("toxicity", "import", str(regrade), *k, "--correct", "misread")
    run("prom", "import", str(_qr_file(tmp_path / "q.json", 1)), *k)
    changed = _qr_file(tmp_path / "q2.json", 2)
    assert "1 corrected" in run("prom", "import", str(changed), *k, "--correct", "typo")

    engine = make_engine(fresh_url)
    try:
        with Session(engine) as session:
            pid = int(
                session.scalar(
                    select(cdm.Person.person_id).where(
                        cdm.Person.person_source_value
                        == pseudonym(load_key(key_file), "H-1")
                    )
                )
                or 0
            )
            one_version = _omop_counts(session, pid)
            assert (one_version["survey_conduct"], one_version["measurement"]) == (
                1,
                16,
            )
            assert one_version["condition_occurrence"] == 1
            history = {
                kind: assessment_history(session, pid, kind, key)
                for kind, key in (("toxicity", DRY_MOUTH), ("prom", "a"))
            }
            assert _history(session, pid) == [
                ("toxicity", 1, False, None),
                ("toxicity", 2, True, "misread"),
                ("prom", 1, False, None),
                ("prom", 2, True, "typo"),
            ]
        head = current_revision(engine)
        engine.dispose()
        command.downgrade(alembic_config(fresh_url), "0008")
        with Session(engine) as session:
            # as under 0008: every version's rows in OMOP, with their ids
            both = _omop_counts(session, pid)
            assert both == {
                "survey_conduct": 2,
                "observation": one_version["observation"] + 30 + 1,
                "measurement": 2 * 16,
                "condition_occurrence": 2,
            }
            for versions in history.values():
                for table, rows in versions[0].rows.items():
                    model = Base.metadata.tables[table]
                    pk = next(iter(model.primary_key.columns))
                    ids = [r[pk.name] for r in rows]
                    found = session.execute(
                        select(model).where(pk.in_(ids)).order_by(pk)
                    )
                    assert [dict(r) for r in found.mappings()] == rows
        engine.dispose()
        upgrade(engine)
        assert current_revision(engine) == head
        with Session(engine) as session:
            assert _omop_counts(session, pid) == one_version
            for kind, key in (("toxicity", DRY_MOUTH), ("prom", "a")):
                again = assessment_history(session, pid, kind, key)
                assert [v.rows for v in again] == [v.rows for v in history[kind]]
                assert [(v.version, v.reason, v.current) for v in again] == [
                    (v.version, v.reason, v.current) for v in history[kind]
                ]
    finally:
        engine.dispose()
