"""Erasure leaves zero rows of the person in any table (checked generically).

A row is written into EVERY table that refers to a person (found here by walking the
metadata, so tables added later are covered), and into the tables that depend on
those rows, for two persons; erasing one must remove all of its rows and none of the
other's.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from typing import Any

from cohort_helpers import D, centre, enrol, user
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    and_,
    func,
    select,
)
from sqlalchemy.orm import Session

from cohort import audit, service
from cohort.erasure import delete_files
from omop.base import Base
from omop.filestore import FileStore, files_of_person

SKIP_TARGETS = {"concept", "vocabulary", "domain", "concept_class", "relationship"}


def _person_tables() -> set[str]:
    direct = set()
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            to_person = any(
                fk.column.table.name == "person" for fk in column.foreign_keys
            )
            if table.name != "person" and (
                to_person or column.name in ("person_id", "subject_id")
            ):
                direct.add(table.name)
    grown = True
    while grown:
        grown = False
        for table in Base.metadata.sorted_tables:
            if table.name in direct:
                continue
            parents = {fk.column.table.name for fk in table.foreign_keys}
            if parents & direct:
                direct.add(table.name)
                grown = True
    return direct | {"note_nlp"}


_NONE = object()  # no value for a column (left to its default)


class Filler:
    def __init__(self, session: Session, person_id: int, site_id: int, tag: str):
        self.session, self.person_id, self.site_id, self.tag = (
            session,
            person_id,
            site_id,
            tag,
        )
        self.rows: dict[str, dict[str, Any]] = {}
        self.person_tables = _person_tables()

    def _scalar(self, table: Table, column: Any) -> Any:
        kind = column.type
        if isinstance(kind, Boolean):
            return False
        if isinstance(kind, DateTime):
            return datetime.datetime(2025, 1, 1, 12, tzinfo=datetime.UTC)
        if isinstance(kind, Date):
            return D(2025, 1, 1)
        if isinstance(kind, Integer):
            return 1
        if isinstance(kind, Float):
            return 0.5
        if isinstance(kind, LargeBinary):
            return b"\x00"
        if column.name == "sha256":
            return hashlib.sha256(self.tag.encode()).hexdigest()
        if isinstance(kind, String):
            text = f"{self.tag}{table.name}{column.name}"
            return text[: kind.length] if kind.length else text
        raise AssertionError(f"no filler for {table.name}.{column.name}")

    def ensure(self, name: str) -> dict[str, Any]:
        if name in self.rows:
            return self.rows[name]
        table = Base.metadata.tables[name]
        pk_names = [c.name for c in table.primary_key.columns]
        if pk_names == ["person_id"] and self._count(
            table, {"person_id": self.person_id}
        ):
            self.rows[name] = {"person_id": self.person_id}
            return self.rows[name]
        values = self._values(name, table)
        if pk_names and all(n in values for n in pk_names):
            key = {n: values[n] for n in pk_names}
            if self._count(table, key):
                self.rows[name] = key
                return key
        result = self.session.execute(table.insert().values(**values))
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and pk[0].name not in values:
            values[pk[0].name] = result.inserted_primary_key[0]
        self.rows[name] = values
        return values

    def _count(self, table: Table, key: dict[str, Any]) -> int:
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(table)
                .where(and_(*(table.c[k] == v for k, v in key.items())))
            )
            or 0
        )

    def _values(self, name: str, table: Table) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for column in table.columns:
            fks = list(column.foreign_keys)
            single_pk = len(table.primary_key.columns) == 1 and column.primary_key
            if single_pk and not fks and isinstance(column.type, Integer):
                continue  # autoincrement
            if fks:
                found = self._fk_value(name, column, fks[0].column)
                if found is not _NONE:
                    values[column.name] = found
                continue
            if column.name in ("person_id", "subject_id"):
                values[column.name] = self.person_id
            elif name == "note_nlp" and column.name == "note_id":
                values[column.name] = self.ensure("note")["note_id"]
            elif not column.nullable:
                values[column.name] = self._scalar(table, column)
        return values

    def _fk_value(self, name: str, column: Any, target: Any) -> Any:
        tname = target.table.name
        if tname == "person":
            return self.person_id
        if tname in SKIP_TARGETS:
            return 0
        if tname == "care_site":
            return self.site_id
        if tname == "audit_record":  # written by audit.record only
            return self.session.scalar(select(func.max(target)))
        if tname != name and (not column.nullable or tname in self.person_tables):
            return self.ensure(tname)[target.name]
        return _NONE

    def fill(self) -> None:
        for name in sorted(self.person_tables):
            self.ensure(name)
        self.session.flush()

    def surviving(self) -> dict[str, int]:
        found = {}
        for name, values in self.rows.items():
            if name not in self.person_tables:
                continue  # a parent row (project, audit record): not the person's
            table = Base.metadata.tables[name]
            condition = and_(*(table.c[k] == v for k, v in values.items()))
            n = self.session.scalar(
                select(func.count()).select_from(table).where(condition)
            )
            if n:
                found[name] = int(n)
        return found


def _mentions(session: Session, person_id: int, pseudonym: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            to_person = any(
                fk.column.table.name == "person" for fk in column.foreign_keys
            )
            if to_person or column.name in ("person_id", "subject_id"):
                value: Any = person_id
            elif isinstance(column.type, String):
                value = pseudonym
            else:
                continue
            n = session.scalar(
                select(func.count()).select_from(table).where(column == value)
            )
            if n:
                found[f"{table.name}.{column.name}"] = int(n)
    return found


def test_erasure_removes_every_row_of_the_person(
    session: Session, tmp_path: Path
) -> None:
    site = centre(session, "E1")
    admin = user(session, "eraser", "admin", [])
    gone = enrol(session, site, "E1-GONE")
    kept = enrol(session, site, "E1-KEPT")
    store = FileStore(tmp_path)
    own = store.put(b"dicom of the erased person")
    shared = store.put(b"file owned by both")
    store.register(session, own, gone)
    store.register(session, shared, gone)
    store.register(session, shared, kept)
    service.list_patients(session, admin)  # audit rows for both persons
    filler_gone = Filler(session, gone, site.care_site_id, "g")
    filler_kept = Filler(session, kept, site.care_site_id, "k")
    filler_gone.fill()
    filler_kept.fill()
    tables_written = set(filler_gone.rows)
    assert {
        "episode_event",
        "image_feature",
        "note_nlp",
        "audit_person",
    } <= tables_written
    assert len(tables_written) >= 30
    before_kept = filler_kept.surviving()

    result = service.withdraw(
        session,
        admin,
        centre_code="E1",
        pseudonym="E1-GONE",
        event_date=D(2025, 6, 1),
        erase=True,
    )
    session.flush()
    assert result.report is not None
    assert filler_gone.surviving() == {}
    assert _mentions(session, gone, "E1-GONE") == {}
    assert filler_kept.surviving() == before_kept
    assert shared in files_of_person(session, kept)
    assert own in result.report.orphan_files
    assert shared not in result.report.orphan_files
    assert delete_files(store, result.report.orphan_files) == 1
    assert not store.exists(own)
    assert store.exists(shared)
    check = audit.verify(session)
    assert check.ok, check.problems
    last = session.scalars(
        select(Base.metadata.tables["audit_record"]).order_by(
            Base.metadata.tables["audit_record"].c.record_id.desc()
        )
    ).first()
    erase_row = session.execute(
        select(Base.metadata.tables["audit_record"]).order_by(
            Base.metadata.tables["audit_record"].c.record_id.desc()
        )
    ).first()
    assert last is not None
    assert erase_row is not None
    assert erase_row.action == "person.erase"
    assert erase_row.person_count == 0
    assert "E1-GONE" not in erase_row.detail
    assert result.report.rows_by_table["person"] == 1
