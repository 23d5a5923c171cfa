"""Tampering with the keyed audit trail is detected, on both backends.

Every database here is a fresh one, migrated and keyed by the production upgrade
(``after_upgrade``), with records written through ``cohort.audit.record`` and real
service calls, committed for real (so the checkpoint log is written as in use).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cohort_helpers import centre
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cohort import audit, service
from cohort.audit_check import AuditCheck
from cohort.audit_files import AuditKey
from cohort.errors import AuditKeyMissingError
from cohort.users import add_user
from omop.cohort_tables import AuditPerson, AuditRecord


@dataclass
class Trail:
    engine: Engine
    factory: sessionmaker[Session]
    key_file: Path
    log: Path
    ids: list[int]

    def verify(self) -> AuditCheck:
        with self.factory() as s:
            return audit.verify(s)

    def rows(self) -> list[AuditRecord]:
        with self.factory() as s:
            return list(s.scalars(select(AuditRecord).order_by(AuditRecord.seq)))


@pytest.fixture
def trail(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Trail]:
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory
    from rtcohort.wiring import after_upgrade

    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "admin-password")
    engine = make_engine(fresh_url)
    upgrade(engine)
    after_upgrade(engine)
    factory = session_factory(engine)
    ids: list[int] = []
    with factory.begin() as s:
        centre(s, "T1")
        add_user(s, "clin", "clinician", ["T1"], "password-123")
    for i in range(3):  # one transaction each: one checkpoint each
        with factory.begin() as s:
            event = service.record_consent(
                s,
                service.acting_user(s, "clin"),
                centre_code="T1",
                pseudonym=f"T1-P{i}",
                state="consented",
                event_date=datetime.date(2025, 1, 10 + i),
                year_of_birth=1950,
                sex="F",
                site="breast",
            )
            assert event.person_id
        with factory.begin() as s:
            ids.append(audit.record(s, "alice", "patients.read", f"read {i}").record_id)
    yield Trail(
        engine,
        factory,
        tmp_path / "keys" / "audit.key",
        tmp_path / "audit-checkpoints.log",
        ids,
    )
    engine.dispose()


def _cli_verify() -> tuple[int, str]:
    from rtcohort.cli import app

    result = CliRunner().invoke(app, ["audit", "verify"])
    return result.exit_code, result.output


def _tampered(t: Trail, needle: str) -> None:
    check = t.verify()
    assert not check.ok
    assert any(needle in p for p in check.problems), check.problems
    code, output = _cli_verify()
    assert code == 1, output
    assert needle in output


def test_intact_trail_verifies(trail: Trail) -> None:
    check = trail.verify()
    assert check.ok, check.problems
    assert check.records == 6
    assert check.checkpointed == 6
    lines = trail.log.read_text().splitlines()
    assert [int(x.split("count=")[1].split()[0]) for x in lines] == [1, 2, 3, 4, 5, 6]
    code, output = _cli_verify()
    assert code == 0, output
    assert "audit chain intact: 6 records" in output
    assert trail.key_file.stat().st_mode & 0o777 == 0o600


def test_mac_is_recomputable_with_the_key_file(trail: Trail) -> None:
    import base64
    import json

    secret = base64.b64decode(json.loads(trail.key_file.read_text())["secret_b64"])
    subkey = hmac.new(secret, b"rtcohort/audit/record/v1", hashlib.sha256).digest()
    prev = audit.GENESIS
    for row in trail.rows():
        when = row.recorded_at.replace(tzinfo=datetime.UTC)
        fields = [str(row.seq), prev, when.isoformat(timespec="microseconds")]
        fields += [row.actor, row.action, row.detail, str(row.person_count)]
        message = "\x1f".join(fields).encode()
        assert row.record_hash == hmac.new(subkey, message, "sha256").hexdigest()
        prev = row.record_hash


def test_changed_record(trail: Trail) -> None:
    with trail.factory.begin() as s:
        s.execute(
            update(AuditRecord)
            .where(AuditRecord.record_id == trail.ids[1])
            .values(actor="mallory")
        )
    _tampered(trail, f"record {trail.ids[1]}: content does not match its MAC")


def _delete(t: Trail, record_ids: list[int]) -> None:
    with t.factory.begin() as s:
        s.execute(delete(AuditPerson).where(AuditPerson.record_id.in_(record_ids)))
        s.execute(delete(AuditRecord).where(AuditRecord.record_id.in_(record_ids)))


def test_deleted_middle(trail: Trail) -> None:
    _delete(trail, [trail.ids[1]])
    _tampered(trail, "link broken")
    _tampered(trail, "records were deleted")


def test_deleted_tail(trail: Trail) -> None:
    rows = trail.rows()
    _delete(trail, [r.record_id for r in rows[-2:]])
    check = trail.verify()  # the shorter chain links and MACs correctly...
    assert all("link" not in p and "MAC" not in p for p in check.problems)
    _tampered(trail, "checkpoint of 6 records but the database holds 4")


def test_deleted_everything(trail: Trail) -> None:
    _delete(trail, [r.record_id for r in trail.rows()])
    _tampered(trail, "the database holds 0")


def _rewrite(t: Trail, mac: object) -> None:
    """Change record 2 and recompute every link and hash with `mac`."""
    with t.factory.begin() as s:
        prev = audit.GENESIS
        for row in s.scalars(select(AuditRecord).order_by(AuditRecord.seq)):
            if row.seq == 2:
                row.detail = "nothing happened"
            iso = row.recorded_at.replace(tzinfo=datetime.UTC).isoformat(
                timespec="microseconds"
            )
            args = (prev, iso, row.actor, row.action, row.detail, row.person_count)
            row.prev_hash = prev
            row.record_hash = (
                audit.legacy_hash(*args)
                if mac is None
                else audit.record_mac(mac, args[0], row.seq, *args[1:])  # type: ignore[arg-type]
            )
            prev = row.record_hash


def test_chain_recomputed_with_plain_sha256(trail: Trail) -> None:
    _rewrite(trail, None)
    _tampered(trail, "content does not match its MAC")


def test_chain_recomputed_with_a_wrong_key(trail: Trail) -> None:
    _rewrite(trail, AuditKey(b"\x01" * 32))
    _tampered(trail, "content does not match its MAC")
    _tampered(trail, "differs from its checkpoint")


def test_tampered_checkpoint_line(trail: Trail) -> None:
    lines = trail.log.read_text().splitlines()
    lines[2] = lines[2].replace("count=3", "count=2")
    trail.log.write_text("\n".join(lines) + "\n")
    _tampered(trail, "line 3: checkpoint MAC wrong (tampered)")


def test_emptied_checkpoint_log(trail: Trail) -> None:
    trail.log.write_text("")
    _tampered(trail, "no checkpoint for the 6 records")


def test_missing_key_file(trail: Trail) -> None:
    trail.key_file.unlink()
    _tampered(trail, f"audit key missing: {trail.key_file}; run rtcohort db upgrade")
    before = len(trail.log.read_text().splitlines())
    with (
        trail.factory.begin() as s,
        pytest.raises(AuditKeyMissingError, match="audit key missing"),
    ):
        audit.record(s, "alice", "patients.read", "x")
    assert len(trail.rows()) == 6  # nothing written
    assert len(trail.log.read_text().splitlines()) == before


def test_rolled_back_append_leaves_no_checkpoint(trail: Trail) -> None:
    def append_then_fail() -> None:
        with trail.factory.begin() as s:
            audit.record(s, "alice", "patients.read", "x")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        append_then_fail()
    assert len(trail.log.read_text().splitlines()) == 6
    assert trail.verify().ok


def test_refusal_survives_the_callers_rollback(trail: Trail) -> None:
    def refuse_then_fail() -> None:
        with trail.factory.begin() as s:
            audit.record(s, "bob", "patients.read", "rolled back")
            audit.record_refusal(s, "bob", "export", "not a project member")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        refuse_then_fail()
    rows = trail.rows()
    assert [(r.actor, r.action, r.detail) for r in rows[6:]] == [
        ("bob", "export", "refused: not a project member")
    ]
    audit.record_refusal(trail.engine, "eve", "read", "no role")
    assert trail.rows()[-1].detail == "refused: no role"
    check = trail.verify()
    assert check.ok, check.problems
    assert check.checkpointed == 8


@pytest.mark.parametrize("broken", [False, True])
def test_upgrade_rekeys_an_unkeyed_chain(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: bool
) -> None:
    """A database of the unkeyed version (0004) is keyed by the upgrade, with a note.

    The rows of the old version are made with the old formula (``legacy_hash``): its
    writer no longer exists.
    """
    import sqlalchemy as sa
    from alembic import command

    from omop.database import alembic_config, upgrade
    from omop.engine import make_engine, session_factory
    from rtcohort.wiring import after_upgrade

    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "admin-password")
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
            old = sa.table(
                "audit_record",
                *(
                    sa.column(c)
                    for c in [
                        "recorded_at",
                        "actor",
                        "action",
                        "detail",
                        "person_count",
                        "prev_hash",
                        "record_hash",
                    ]
                ),
            )
            prev = audit.GENESIS
            for i in range(3):
                when = datetime.datetime(2025, 1, 1 + i, tzinfo=datetime.UTC)
                iso = when.isoformat(timespec="microseconds")
                detail = f"read {i}"
                digest = audit.legacy_hash(prev, iso, "alice", "read", detail, 0)
                if broken and i == 1:
                    detail = "changed under the old chain"
                connection.execute(
                    old.insert().values(
                        recorded_at=when,
                        actor="alice",
                        action="read",
                        detail=detail,
                        person_count=0,
                        prev_hash=prev,
                        record_hash=digest,
                    )
                )
                prev = digest
        upgrade(engine)
        after_upgrade(engine)
        with session_factory(engine)() as s:
            check = audit.verify(s)
            rows = list(s.scalars(select(AuditRecord).order_by(AuditRecord.seq)))
        assert check.ok, check.problems
        assert (check.records, check.checkpointed) == (4, 4)
        assert [r.seq for r in rows] == [1, 2, 3, 4]
        state = "BROKEN at 1 records" if broken else "intact"
        assert rows[-1].action == "audit.rekey"
        assert rows[-1].detail.startswith(
            f"3 records of the unkeyed SHA-256 chain ({state}) re-MACed"
        )
        after_upgrade(engine)  # a second upgrade changes nothing
        with session_factory(engine)() as s:
            assert audit.verify(s).records == 4
    finally:
        engine.dispose()
