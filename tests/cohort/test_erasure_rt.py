"""Erasure of persons with real data, built through the production paths.

A person gets RT data through the folder ``import`` and through the receiver
(``rtcohort receive --deid`` on loopback, its inbox outside the data directory, then
imported), a receiver reject (burned-in annotation, held as received in
``<inbox>-quarantine``), audit copies written outside the data directory by
``rtcohort audit-copies``, a dataset held in quarantine (no structure set), PROMs and
toxicity, a project, an invitation with its outbox message and a contact entry; a
person consenting to PROMs only has RT data held for want of consent. After
``rtcohort withdraw --erase`` (and the service function) no identifier of either
(hospital id, pseudonym, original and remapped Study/Series/SOP/Frame of Reference
UIDs, and the audit copies' own pseudonyms and UIDs) is left in the database (SQLite:
raw bytes of the file; PostgreSQL: every text column after VACUUM) or in any file
under the data directory, the inbox, its quarantine and the audit copies. Another
patient's reject and audit copies stay; a reject with no PatientID is reported as
unlinkable and kept.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import Engine, String, Text, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cohort import erasure_files, invitations, outbox, service
from cohort.projects import attach, create_project
from etl.deid.audit_copies import copy_key
from etl.deid.keys import CentreKey, load_key
from etl.deid.pseudonymise import date_offset_days, pseudonym, remap_uid
from omop.base import Base
from omop.cdm import Person
from omop.cohort_tables import AuditRecord
from omop.engine import make_engine, session_factory
from rtcohort.cli import app
from tests.etl.ingest_corpus import edit, write_patient

runner = CliRunner()
CENTRE = "ER01"
UID_KEYWORDS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
)


def _ok(args: list[str], code: int = 0) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.output


@dataclass
class Env:
    root: Path
    data: Path
    url: str
    key: CentreKey

    @property
    def k(self) -> list[str]:
        return ["--centre", CENTRE, "--key-file", str(self.root / "k.key")]

    def engine(self) -> Engine:
        return make_engine(self.url)

    @property
    def folders(self) -> list[Path]:
        """Where files of a person may be: the data dir and the folders outside."""
        names = ("inbox", "inbox-quarantine", "audit")
        return [self.data, *(self.root / n for n in names)]


@pytest.fixture
def env(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "correct horse battery")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    _ok(["db", "upgrade"])
    _ok(["centre", "add", CENTRE])
    _ok(["keys", "new", "--centre", CENTRE, "--out", str(tmp_path / "k.key")])
    return Env(tmp_path, tmp_path / "data", fresh_url, load_key(tmp_path / "k.key"))


def _consent(env: Env, patient: str, state: str, *extra: str) -> None:
    _ok(["consent", "record", patient, *env.k, "--state", state,
         "--year-of-birth", "1950", "--sex", "F", "--date", "2025-01-10", *extra])  # fmt: skip


def _identifiers(env: Env, patient: str, folders: list[Path]) -> set[str]:
    """Hospital id, pseudonym, every original UID and its remapped form.

    Also the pseudonym and UIDs of the patient in audit copies 1 and 2.
    """
    keys = [env.key, copy_key(env.key, 1), copy_key(env.key, 2)]
    found = {patient} | {pseudonym(k, patient) for k in keys}
    for folder in folders:
        for path in folder.rglob("*.dcm"):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            for keyword in UID_KEYWORDS:
                uid = str(ds.get(keyword, "") or "")
                if uid:
                    found |= {uid} | {remap_uid(k, uid) for k in keys}
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ct(folder: Path) -> Path:
    return next(
        p
        for p in sorted(folder.rglob("*.dcm"))
        if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT"
    )


def _receive(env: Env, files: list[Path]) -> tuple[Path, list[int]]:
    """Send files to ``rtcohort receive --deid`` on loopback; return inbox, statuses."""
    port = _free_port()
    inbox = env.root / "inbox"  # outside the data directory
    args = ["receive", "--port", str(port), "--inbox", str(inbox),
            "--allowed-caller", "TPS", "--deid", *env.k]  # fmt: skip
    code = "from rtcohort.cli import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    ae = AE(ae_title="TPS")
    ae.requested_contexts = StoragePresentationContexts[:120]
    ae.add_requested_context(Verification)
    try:
        for _ in range(200):
            assoc = ae.associate("127.0.0.1", port, ae_title="RTCOHORT")
            if assoc.is_established:
                break
            time.sleep(0.1)
        assert assoc.is_established
        statuses = [int(assoc.send_c_store(str(f)).Status) for f in files]
        assoc.release()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    return inbox, statuses


def _outcomes(session: Session, env: Env, patient: str) -> None:
    from instruments.fhir import PSEUDONYM_SYSTEM, PromResponse, SubjectIdentifier
    from instruments.fhir_adverse_event import ToxicityGrading
    from instruments.store import Assessment, store_prom, store_toxicity

    pseudo = pseudonym(env.key, patient)
    person = session.scalars(
        select(Person).where(Person.person_source_value == pseudo)
    ).one()
    where = Assessment(person.person_id, "m3", date_offset_days(env.key, patient))
    subject = SubjectIdentifier(PSEUDONYM_SYSTEM, pseudo)
    store_toxicity(session, where, ToxicityGrading(
        resource_id=f"tox-{pseudo}", subject=subject, version="5.0",
        term="Pneumonitis", grade=2, assessed_on=datetime.date(2025, 5, 1),
        timepoint="m3"))  # fmt: skip
    store_prom(session, where, PromResponse(
        resource_id=f"prom-{pseudo}", instrument="QLQ-C30", subject=subject,
        authored=datetime.date(2025, 5, 2), values=dict.fromkeys(range(1, 31), 2),
        timepoint="m3"))  # fmt: skip
    issued = invitations.issue(session, b"k" * 32, person.person_id, "m6")
    outbox.enqueue(session, person.person_id, "invitation", f"About {pseudo}",
                   "{link}", invitation_id=issued.invitation_id)  # fmt: skip
    today = datetime.date(2025, 6, 1)
    create_project(session, "ERP", name="Erasure", protocol="PR-1",
                   data_controller="UMC", expires_on=datetime.date(2030, 1, 1),
                   today=today)  # fmt: skip
    assert attach(session, "ERP", [person.person_id], actor="admin", today=today) == 1


def _build(env: Env) -> dict[str, set[str]]:
    src = env.root / "src"  # the hospital's export: outside the data directory
    write_patient(src / "a", "ER-A-4711", 601)
    recv = env.root / "tps"  # sent by the TPS to the receiver
    write_patient(recv, "ER-A-4711", 602)
    write_patient(src / "h", "ER-A-4711", 603)
    for rs in (src / "h").rglob("*.dcm"):
        if pydicom.dcmread(rs, stop_before_pixels=True).Modality == "RTSTRUCT":
            rs.unlink()
    # consented to PROMs only: the RT data are held for want of consent to data use
    write_patient(src / "c", "ER-C-0815", 604)
    write_patient(src / "b", "ER-B-1234", 605)  # stays
    # rejected by the receiver: burned-in annotation (A, and B who stays), and an
    # image without PatientID that no one can be linked to
    rejects = env.root / "rejects"
    for name, patient, seed in (("a", "ER-A-4711", 606), ("b", "ER-B-1234", 607),
                                ("z", "ER-Z-0001", 608)):  # fmt: skip
        write_patient(rejects / name, patient, seed)
    edit(_ct(rejects / "a"), BurnedInAnnotation="YES")
    edit(_ct(rejects / "b"), BurnedInAnnotation="YES")
    edit(_ct(rejects / "z"), PatientID=None)
    _consent(env, "ER-A-4711", "consented", "--email", "er-a@example.org")
    _consent(env, "ER-B-1234", "consented")
    _consent(env, "ER-C-0815", "consented", "--scope", "proms")
    out = _ok(["import", str(src), *env.k])
    assert "datasets loaded 2" in out, out
    assert "held 2" in out, out
    copies = _ok(["audit-copies", str(src), str(env.root / "audit"), "--copies", "2",
                  "--key-file", str(env.root / "k.key")])  # fmt: skip
    assert "copy_2:" in copies
    sent = sorted(recv.rglob("*.dcm")) + [_ct(rejects / n) for n in "abz"]
    inbox, statuses = _receive(env, sent)
    assert statuses == [0] * (len(sent) - 3) + [0xC000] * 3
    assert "datasets loaded 1" in _ok(["import", str(inbox), *env.k])
    engine = env.engine()
    with session_factory(engine).begin() as session:
        _outcomes(session, env, "ER-A-4711")
    engine.dispose()
    return {
        "ER-A-4711": _identifiers(
            env, "ER-A-4711", [src / "a", recv, src / "h", rejects / "a"]
        ),
        "ER-C-0815": _identifiers(env, "ER-C-0815", [src / "c"]),
        "ER-B-1234": _identifiers(env, "ER-B-1234", [src / "b", rejects / "b"]),
    }


def _database_hits(env: Env, needles: set[str]) -> set[str]:
    engine = env.engine()
    try:
        if engine.dialect.name == "sqlite":
            with engine.connect() as c:
                c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            assert engine.url.database is not None
            db = Path(engine.url.database)
            blobs = [p.read_bytes() for p in db.parent.glob(db.name + "*")]
            return {n for n in needles if any(n.encode() in b for b in blobs)}
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM")
        corpus: list[str] = []
        with engine.connect() as c:
            for table in Base.metadata.sorted_tables:
                cols = [col for col in table.c if isinstance(col.type, String | Text)]
                if cols:
                    joined = func.concat_ws("\x01", *cols)
                    corpus += [
                        str(v) for v in c.scalars(select(joined).select_from(table))
                    ]
        everything = "\x02".join(corpus)
        return {n for n in needles if n in everything}
    finally:
        engine.dispose()


def _file_hits(env: Env, needles: set[str]) -> set[str]:
    hits: set[str] = set()
    for folder in env.folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                hits |= {n for n in needles if n.encode() in data}
    return hits


def _person_count(env: Env) -> int:
    engine = env.engine()
    with engine.connect() as c:
        n = int(c.scalar(select(func.count()).select_from(Person)) or 0)
    engine.dispose()
    return n


def test_erasure_leaves_no_identifier(env: Env) -> None:
    ids = _build(env)
    erased = ids["ER-A-4711"] | ids["ER-C-0815"]
    # the search finds them before erasure (so zero hits afterwards means something)
    assert pseudonym(env.key, "ER-A-4711") in _database_hits(env, erased)
    for folder in env.folders:  # each place holds the person's identifiers
        assert _file_hits(Env(env.root, folder, env.url, env.key), erased), folder
    kept_before = _database_hits(env, ids["ER-B-1234"])
    kept_files = _file_hits(env, ids["ER-B-1234"])
    quarantine = env.root / "inbox-quarantine"
    assert len(list(quarantine.glob("*.held"))) == 3
    unlinkable = next(
        held
        for held in quarantine.glob("*.held")
        if b"no PatientID" in held.with_suffix(".reason.json").read_bytes()
    )

    out = _ok(["withdraw", "ER-A-4711", *env.k, "--erase"])
    assert out.startswith("erased: ")
    assert "check: no row of the person remains" in out
    assert f"unlinkable, kept: {unlinkable}, no readable PatientID" in out
    engine = env.engine()
    with session_factory(engine).begin() as session:
        admin = service.acting_user(session, "admin")
        started = time.perf_counter()
        result = service.withdraw(
            session, admin, centre_code=CENTRE,
            pseudonym=pseudonym(env.key, "ER-C-0815"),
            event_date=datetime.date(2025, 6, 1), erase=True, data_dir=env.data,
            key=env.key,
        )  # fmt: skip
    with session_factory(engine)() as session:
        report = result.report
        assert report is not None
        deleted = erasure_files.finish_erasure(
            session, env.data, report.orphan_files, report.outside_files
        )
    print(f"service erasure: {(time.perf_counter() - started) * 1000:.0f} ms")
    engine.dispose()
    assert len(report.outside_files) > 0  # C's audit copies
    assert deleted == len(report.orphan_files) + len(report.outside_files)
    assert report.unlinkable == [
        f"unlinkable, kept: {unlinkable}, no readable PatientID"
    ]

    assert _database_hits(env, erased) == set()
    assert _file_hits(env, erased) == set()
    assert _file_hits(env, ids["ER-B-1234"]) == kept_files  # B's reject and copies
    assert unlinkable.is_file()
    assert len(list(quarantine.glob("*.held"))) == 2
    assert _database_hits(env, ids["ER-B-1234"]) == kept_before
    assert _person_count(env) == 1
    assert "audit chain intact" in _ok(["audit", "verify"])


def _rt_person(env: Env) -> set[str]:
    src = env.root / "src"
    write_patient(src, "ER-X-1", 611)
    _consent(env, "ER-X-1", "consented")
    assert "datasets loaded 1" in _ok(["import", str(src), *env.k])
    return _identifiers(env, "ER-X-1", [src])


def test_crash_after_commit_is_finished_by_a_rerun(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _rt_person(env)

    def crash(*_args: object) -> int:
        raise OSError("power cut between commit and file deletion")

    monkeypatch.setattr(erasure_files, "_delete_by_hash", crash)
    result = runner.invoke(app, ["withdraw", "ER-X-1", *env.k, "--erase"])
    assert result.exit_code == 1  # a failure, one line (issue 13), no traceback
    assert "power cut between commit" in result.output
    assert "Traceback" not in result.output
    # committed: the withdrawal (audit record) and the erasure of every row ...
    assert _person_count(env) == 0
    assert _database_hits(env, ids) == set()
    engine = env.engine()
    with engine.connect() as c:
        actions = list(c.scalars(select(AuditRecord.action)))
    engine.dispose()
    assert actions[-1] == "person.erase"
    # ... the files are left, and the journal names them by hash only
    assert _file_hits(env, ids)
    journal = list((env.data / erasure_files.JOURNAL_DIR).glob("*.json"))
    assert len(journal) == 1
    assert not {n for n in ids if n.encode() in journal[0].read_bytes()}

    monkeypatch.undo()
    out = _ok(["withdraw", "ER-X-1", *env.k, "--erase"], code=2)
    assert "unknown person" in out
    assert _file_hits(env, ids) == set()
    assert not list((env.data / erasure_files.JOURNAL_DIR).glob("*.json"))


def test_crash_before_commit_leaves_the_person_whole(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _rt_person(env)
    before_db = _database_hits(env, ids)
    before_files = {
        p: p.read_bytes()
        for p in env.data.rglob("*")
        if p.is_file() and "db" not in p.name
    }

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError("power cut after the deletes, before commit")

    monkeypatch.setattr(erasure_files, "write_journal", crash)
    result = runner.invoke(app, ["--debug", "withdraw", "ER-X-1", *env.k, "--erase"])
    assert isinstance(result.exception, OSError)  # --debug: the exception itself
    assert _person_count(env) == 1
    assert _database_hits(env, ids) == before_db
    assert all(p.read_bytes() == data for p, data in before_files.items())

    monkeypatch.undo()
    assert "erased: " in _ok(["withdraw", "ER-X-1", *env.k, "--erase"])
    assert _person_count(env) == 0
    assert _database_hits(env, ids) == set()
    assert _file_hits(env, ids) == set()
