"""Erasure: remove a person from every table that refers to a person, generically.

The tables are found by walking ``Base.metadata`` (so tables that later features add
are covered without a change here):

1. *direct* references: a column with a foreign key to ``person.person_id``, or a
   column named ``person_id`` / ``subject_id`` (OMOP ``cohort``), or a text column
   named ``person_source_value`` / ``pseudonym`` holding the pseudonym;
2. *dependent* rows: rows whose foreign key (or a column named like the referenced
   table's single primary-key column, as OMOP ``note_nlp.note_id``) points at a row
   being removed, recursively: ``episode_event`` of the person's episodes,
   ``image_feature`` of the image occurrences, the outbox of the invitations...

Rows are deleted children first, in the caller's transaction; the person's files
are released from the file store index (``omop.filestore.release_person``). Every
file hash that a deleted row named in a ``sha256`` column (stored files, received
objects, held and quarantined files) and that no remaining row names is returned,
for :mod:`cohort.erasure_files` to delete from disk after commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import (
    Column,
    ColumnElement,
    MetaData,
    String,
    Table,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from omop.base import Base
from omop.filestore import FileStore, release_person
from omop.filestore_gc import unreferenced_hashes

__all__ = [
    "FILE_HASH_COLUMN",
    "PERSON_COLUMN_NAMES",
    "PSEUDONYM_COLUMN_NAMES",
    "ErasureReport",
    "delete_files",
    "erase_person",
    "person_tables",
    "remaining",
    "unreferenced",
]

PERSON_COLUMN_NAMES = frozenset({"person_id", "subject_id"})
PSEUDONYM_COLUMN_NAMES = frozenset({"person_source_value", "pseudonym"})
#: A column of this name holds the SHA-256 of a file (store, quarantine, inbox).
FILE_HASH_COLUMN = "sha256"


@dataclass
class _Plan:
    direct: dict[str, list[Column[object]]] = field(default_factory=dict)
    by_pseudonym: dict[str, list[Column[object]]] = field(default_factory=dict)
    # child table -> [(child column, parent column)]
    parents: dict[str, list[tuple[Column[object], Column[object]]]] = field(
        default_factory=dict
    )
    order: list[Table] = field(default_factory=list)


def _is_person_fk(column: Column[object]) -> bool:
    return any(
        fk.column.table.name == "person" and fk.column.name == "person_id"
        for fk in column.foreign_keys
    )


_Links = dict[str, list[tuple[Column[object], Column[object]]]]


def _plan(metadata: MetaData) -> _Plan:
    plan = _Plan()
    tables = {t.name: t for t in metadata.sorted_tables}
    _add_direct(plan, tables)
    relevant = set(plan.direct) | set(plan.by_pseudonym)
    _add_parents(plan, _links(tables), relevant)
    _order(plan, tables, relevant)
    return plan


def _add_direct(plan: _Plan, tables: dict[str, Table]) -> None:
    """Columns that name the person by id or by pseudonym."""
    for table in tables.values():
        for column in table.columns:
            if table.name == "person":
                if column.name == "person_id":
                    plan.direct.setdefault("person", []).append(column)
                continue
            if _is_person_fk(column) or column.name in PERSON_COLUMN_NAMES:
                plan.direct.setdefault(table.name, []).append(column)
            elif column.name in PSEUDONYM_COLUMN_NAMES and isinstance(
                column.type, String
            ):
                plan.by_pseudonym.setdefault(table.name, []).append(column)


def _links(tables: dict[str, Table]) -> _Links:
    """Child table -> (column, parent column): foreign keys and links by name."""
    # Implicit links by name (OMOP note_nlp.note_id): a column named like another
    # table's own single primary key (one that is not itself a foreign key).
    pk_owner = {}
    for t in tables.values():
        pk = list(t.primary_key.columns)
        if (
            len(pk) == 1
            and not pk[0].foreign_keys
            and pk[0].name not in PERSON_COLUMN_NAMES
        ):
            pk_owner[pk[0].name] = t
    links: _Links = {}
    for table in tables.values():
        for column in table.columns:
            targets = [fk.column for fk in column.foreign_keys]
            owner = pk_owner.get(column.name)
            if (
                not targets
                and owner is not None
                and owner is not table
                and not column.primary_key
            ):
                targets = [next(iter(owner.primary_key.columns))]
            for target in targets:
                if target.table is not table and target.table.name != "person":
                    links.setdefault(table.name, []).append((column, target))
    return links


def _add_parents(plan: _Plan, links: _Links, relevant: set[str]) -> None:
    """Add the links into relevant tables, until no new table becomes relevant."""
    changed = True
    while changed:
        changed = False
        for child, pairs in links.items():
            for column, target in pairs:
                if target.table.name in relevant:
                    plan.parents.setdefault(child, [])
                    if (column, target) not in plan.parents[child]:
                        plan.parents[child].append((column, target))
                    if child not in relevant:
                        relevant.add(child)
                        changed = True


def _order(plan: _Plan, tables: dict[str, Table], relevant: set[str]) -> None:
    """Put the relevant tables in deletion order (children first, person last)."""
    children: dict[str, list[str]] = {}
    for child, pairs in plan.parents.items():
        for _column, target in pairs:
            children.setdefault(target.table.name, []).append(child)
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in visiting:
            return
        visiting.add(name)
        for child in sorted(children.get(name, [])):
            visit(child)
        visiting.discard(name)
        done.add(name)
        plan.order.append(tables[name])

    for name in sorted(relevant - {"person"}):
        visit(name)
    plan.order.append(tables["person"])  # every direct reference is its child


def _condition(
    plan: _Plan,
    table: Table,
    person_id: int,
    pseudonym: str | None,
    stack: frozenset[str] = frozenset(),
) -> ColumnElement[bool] | None:
    parts: list[ColumnElement[bool]] = [
        c == person_id for c in plan.direct.get(table.name, [])
    ]
    if pseudonym:
        parts += [c == pseudonym for c in plan.by_pseudonym.get(table.name, [])]
    for column, target in plan.parents.get(table.name, []):
        parent = target.table
        if parent.name in stack or not isinstance(parent, Table):
            continue
        inner = _condition(plan, parent, person_id, pseudonym, stack | {table.name})
        if inner is not None:
            parts.append(column.in_(select(target).where(inner)))
    return or_(*parts) if parts else None


def person_tables(metadata: MetaData | None = None) -> list[str]:
    """Return the names of every table erasure touches, children first."""
    return [t.name for t in _plan(metadata or Base.metadata).order]


@dataclass
class ErasureReport:
    """What erasure removed (counts only: the report names no one)."""

    rows_by_table: dict[str, int] = field(default_factory=dict)
    orphan_files: list[str] = field(default_factory=list)
    files_deleted: int = 0
    #: Hashes of the person's receiver rejects and audit-copy files outside the
    #: data directory (:mod:`cohort.erasure_outside`), deleted after commit.
    outside_files: list[str] = field(default_factory=list)
    #: ``unlinkable, kept: <path>, <reason>`` for files no one can be linked to.
    unlinkable: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Total rows removed."""
        return sum(self.rows_by_table.values())


def remaining(
    session: Session, person_id: int, pseudonym: str | None
) -> dict[str, int]:
    """Count the rows that still refer to the person, per table (empty: none)."""
    plan = _plan(Base.metadata)
    found: dict[str, int] = {}
    for table in plan.order:
        condition = _condition(plan, table, person_id, pseudonym)
        if condition is None:
            continue
        count = int(
            session.scalar(select(func.count()).select_from(table).where(condition))
            or 0
        )
        if count:
            found[table.name] = count
    return found


def _file_hashes(
    session: Session, plan: _Plan, person_id: int, pseudonym: str | None
) -> set[str]:
    """Hashes in the ``sha256`` columns of the rows erasure is about to delete."""
    found: set[str] = set()
    for table in plan.order:
        if FILE_HASH_COLUMN not in table.c:
            continue
        condition = _condition(plan, table, person_id, pseudonym)
        if condition is not None:
            found.update(
                str(h)
                for h in session.scalars(
                    select(table.c[FILE_HASH_COLUMN]).where(condition).distinct()
                )
                if h
            )
    return found


def erase_person(session: Session, person_id: int) -> ErasureReport:
    """Delete every row of the person, in the caller's transaction.

    Besides the rows, the report lists every file hash the person's rows named (the
    file store, held and quarantined files, received objects) that no remaining row
    names: those files are deleted after commit
    (:func:`cohort.erasure_files.finish_erasure`).

    Returns
    -------
    ErasureReport
        Rows removed per table and the file hashes no one owns any more (delete
        them with :func:`cohort.erasure_files.finish_erasure` after the transaction
        commits).

    Raises
    ------
    RuntimeError
        When rows still refer to the person afterwards (the caller rolls back).
    """
    session.flush()
    pseudonym = session.scalar(
        select(Base.metadata.tables["person"].c.person_source_value).where(
            Base.metadata.tables["person"].c.person_id == person_id
        )
    )
    report = ErasureReport()
    plan = _plan(Base.metadata)
    candidates = _file_hashes(session, plan, person_id, pseudonym)
    owners = Base.metadata.tables["stored_file_owner"]
    owned = int(
        session.scalar(
            select(func.count())
            .select_from(owners)
            .where(owners.c.person_id == person_id)
        )
        or 0
    )
    released = release_person(session, person_id)
    if owned:
        report.rows_by_table["stored_file_owner"] = owned
    if released:
        report.rows_by_table["stored_file"] = len(released)
    for table in plan.order:
        condition = _condition(plan, table, person_id, pseudonym)
        if condition is None:
            continue
        result = session.execute(
            delete(table).where(condition).execution_options(synchronize_session=False)
        )
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            report.rows_by_table[table.name] = (
                report.rows_by_table.get(table.name, 0) + count
            )
    session.expunge_all()
    left = remaining(session, person_id, pseudonym)
    if left:
        raise RuntimeError(f"erasure incomplete: rows remain in {sorted(left)}")
    report.orphan_files = sorted(unreferenced(session, candidates | set(released)))
    return report


def unreferenced(session: Session, hashes: Iterable[str]) -> set[str]:
    """Return the hashes that no ``sha256`` column of any table names any more.

    The scan of the live database is :func:`omop.filestore_gc.unreferenced_hashes`
    (shared with the collection of orphan files after a crashed import).
    """
    return unreferenced_hashes(session, hashes)


def delete_files(store: FileStore, hashes: Iterable[str]) -> int:
    """Delete released files from the store (after commit); return how many existed."""
    return sum(1 for digest in hashes if store.delete(digest))
