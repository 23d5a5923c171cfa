"""Erasure of a file held as received, before pseudonymisation (issue 12).

A consented patient's image carries BurnedInAnnotation YES: the import holds it raw
under ``<data_dir>/quarantine``. The quarantine row names the patient by the keyed
pseudonym (never the hospital id), so ``withdraw(erase=True)`` deletes the row and
the raw file; afterwards the hospital id is in no file under the data directory.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cohort import erasure_files, service
from etl.deid.keys import load_key
from etl.deid.pseudonymise import pseudonym
from etl.ingest.qa import Reason
from omop.engine import make_engine, session_factory
from omop.ingest_tables import QuarantineItem
from rtcohort.cli import app
from tests.etl.ingest_corpus import edit, write_patient

runner = CliRunner()
CENTRE = "ER02"
PATIENT = "RAW-HELD-9931"


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def _file_hits(data: Path, needle: str) -> list[Path]:
    return [
        p for p in data.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()
    ]


def test_raw_held_file_is_erased(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(data))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "correct horse battery")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    _ok(["db", "upgrade"])
    _ok(["centre", "add", CENTRE])
    key_file = tmp_path / "k.key"
    _ok(["keys", "new", "--centre", CENTRE, "--out", str(key_file)])
    key = load_key(key_file)
    k = ["--centre", CENTRE, "--key-file", str(key_file)]
    _ok(["consent", "record", PATIENT, *k, "--state", "consented",
         "--year-of-birth", "1950", "--sex", "F", "--date", "2025-01-10"])  # fmt: skip

    src = tmp_path / "src"
    write_patient(src, PATIENT, 701)
    burned = next(
        p
        for p in sorted(src.rglob("*.dcm"))
        if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT"
    )
    edit(burned, BurnedInAnnotation="YES")
    _ok(["import", str(src), *k])

    pseudo = pseudonym(key, PATIENT)
    engine = make_engine(fresh_url)
    try:
        with session_factory(engine)() as session:
            rows = list(
                session.scalars(
                    select(QuarantineItem).where(
                        QuarantineItem.reason_code == Reason.BURNED_IN_ANNOTATION.value
                    )
                )
            )
        assert len(rows) == 1
        raw = Path(rows[0].path)
        assert rows[0].pseudonymised is False
        assert rows[0].person_source_value == pseudo  # the pseudonym, not the id
        assert raw.is_file() and raw.parent == data / "quarantine"
        assert raw in _file_hits(data, PATIENT)  # held as received

        with session_factory(engine).begin() as session:
            admin = service.acting_user(session, "admin")
            result = service.withdraw(
                session, admin, centre_code=CENTRE, pseudonym=pseudo,
                event_date=datetime.date(2025, 6, 1), erase=True, data_dir=data,
            )  # fmt: skip
        with session_factory(engine)() as session:
            assert result.report is not None
            assert rows[0].sha256 in result.report.orphan_files
            erasure_files.finish_erasure(session, data, result.report.orphan_files)
            left = session.scalars(
                select(QuarantineItem.quarantine_id).where(
                    QuarantineItem.sha256 == rows[0].sha256
                )
            ).all()
    finally:
        engine.dispose()
    assert left == []
    assert not raw.exists()
    assert _file_hits(data, PATIENT) == []
