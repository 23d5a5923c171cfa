"""Load a full Athena vocabulary download on top of the seed, then re-resolve.

Athena ships tab-separated files (``CONCEPT.csv``, ``VOCABULARY.csv``, ...; dates as
``YYYYMMDD``; no quoting). :func:`load_athena` upserts every file found in one
transaction — a malformed or truncated file rolls everything back and names the file
and line — and then:

1. turns the pending TG-263 -> SNOMED CT maps into CONCEPT_RELATIONSHIP rows;
2. re-points every ``*_field_concept_id`` from our seeded CDM field concepts to the
   Athena concept of the same name (and drops ours);
3. fills ``unit_concept_id`` zeros from ``unit_source_value`` (UCUM code);
4. fills ``X_concept_id`` zeros from ``X_source_concept_id`` through ``Maps to``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, and_, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from omop import cdm
from omop.base import Base
from omop.codegen import MAPPER_KEYS
from omop.errors import AthenaLoadError
from omop.platform import ConceptMapPending
from omop.spec import TypeFamily, tables_by_name
from omop.vocab.registry import FIRST_ID

__all__ = ["ATHENA_FILES", "AthenaReport", "load_athena"]

# Load order: the parents of the vocabulary cycle first (constraints are deferred).
ATHENA_FILES: tuple[tuple[str, type[Base]], ...] = (
    ("VOCABULARY.csv", cdm.Vocabulary),
    ("DOMAIN.csv", cdm.Domain),
    ("CONCEPT_CLASS.csv", cdm.ConceptClass),
    ("RELATIONSHIP.csv", cdm.Relationship),
    ("CONCEPT.csv", cdm.Concept),
    ("CONCEPT_RELATIONSHIP.csv", cdm.ConceptRelationship),
    ("CONCEPT_SYNONYM.csv", cdm.ConceptSynonym),
    ("CONCEPT_ANCESTOR.csv", cdm.ConceptAncestor),
    ("DRUG_STRENGTH.csv", cdm.DrugStrength),
)
_BATCH = 5_000
_REVERSE = {"Maps to": "Mapped from", "Maps to value": "Value mapped from"}


@dataclass
class AthenaReport:
    """What the load did."""

    rows: dict[str, int] = field(default_factory=dict)
    maps_created: int = 0
    field_concepts_repointed: int = 0
    zeros_resolved: int = 0


def _converter(family: TypeFamily) -> Callable[[str], Any]:
    if family in {TypeFamily.INTEGER, TypeFamily.BIGINT}:
        return int
    if family is TypeFamily.FLOAT:
        return float
    if family is TypeFamily.DATE:
        return lambda s: datetime.datetime.strptime(s, "%Y%m%d").date()  # noqa: DTZ007
    if family is TypeFamily.DATETIME:
        return datetime.datetime.fromisoformat
    return str


def _read(path: Path, table: Table) -> Iterator[dict[str, Any]]:
    spec = tables_by_name()[table.name]
    families = {f.name: f for f in spec.fields}
    with path.open(encoding="utf-8", newline="") as handle:
        header_line = handle.readline()
        header = [h.strip().lower() for h in header_line.rstrip("\r\n").split("\t")]
        unknown = [h for h in header if h not in families]
        if unknown or not header_line.endswith("\n"):
            raise AthenaLoadError(
                f"{path.name} line 1: unexpected columns {unknown or header}"
            )
        convert = [_converter(families[h].family) for h in header]
        required = [families[h].required for h in header]
        for number, line in enumerate(handle, start=2):
            if not line.endswith("\n"):
                raise AthenaLoadError(f"{path.name} line {number}: truncated line")
            values = line.rstrip("\r\n").split("\t")
            if len(values) != len(header):
                raise AthenaLoadError(
                    f"{path.name} line {number}: {len(values)} fields, "
                    f"expected {len(header)}"
                )
            row: dict[str, Any] = {}
            for name, raw, conv, req in zip(
                header, values, convert, required, strict=True
            ):
                if raw == "":
                    if req:
                        raise AthenaLoadError(
                            f"{path.name} line {number}: field {name} is empty"
                        )
                    row[name] = None
                    continue
                try:
                    row[name] = conv(raw)
                except ValueError:
                    raise AthenaLoadError(
                        f"{path.name} line {number}: field {name}: "
                        f"cannot read {raw[:40]!r}"
                    ) from None
            yield row


def _upsert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    pk = [c.name for c in table.primary_key.columns]
    if pk:
        dialect = session.get_bind().dialect.name
        stmt = (
            postgresql.insert(table)
            if dialect == "postgresql"
            else sqlite.insert(table)
        )
        columns = [c for c in rows[0] if c not in pk]
        stmt = stmt.on_conflict_do_update(
            index_elements=pk, set_={c: stmt.excluded[c] for c in columns}
        )
        session.execute(stmt, rows)
        return
    keys = MAPPER_KEYS[table.name]
    key_columns = [table.c[k] for k in keys]
    session.execute(
        delete(table).where(
            tuple_(*key_columns).in_([tuple(r[k] for k in keys) for r in rows])
        )
    )
    session.execute(table.insert(), rows)


def _load_file(
    session: Session,
    path: Path,
    table: Table,
    progress: Callable[[str, int], None] | None,
) -> int:
    count = 0
    batch: list[dict[str, Any]] = []
    for row in _read(path, table):
        batch.append(row)
        if len(batch) >= _BATCH:
            _upsert(session, table, batch)
            count += len(batch)
            batch = []
            if progress:
                progress(path.name, count)
    if batch:
        _upsert(session, table, batch)
        count += len(batch)
    return count


def _create_pending_maps(session: Session) -> int:
    created = 0
    rel = cdm.ConceptRelationship
    pending = session.execute(select(ConceptMapPending)).scalars().all()
    for item in pending:
        target = session.scalar(
            select(cdm.Concept.concept_id).where(
                cdm.Concept.vocabulary_id == item.target_vocabulary_id,
                cdm.Concept.concept_code == item.target_concept_code,
            )
        )
        if target is None:
            continue
        pairs = (
            (item.source_concept_id, target, item.relationship_id),
            (target, item.source_concept_id, _REVERSE[item.relationship_id]),
        )
        for one, two, relationship in pairs:
            exists = session.scalar(
                select(rel.concept_id_1).where(
                    rel.concept_id_1 == one,
                    rel.concept_id_2 == two,
                    rel.relationship_id == relationship,
                )
            )
            if exists is None:
                session.add(
                    rel(
                        concept_id_1=one,
                        concept_id_2=two,
                        relationship_id=relationship,
                        valid_start_date=datetime.date(1970, 1, 1),
                        valid_end_date=datetime.date(2099, 12, 31),
                    )
                )
                created += 1
    session.flush()
    return created


def _tables() -> list[Table]:
    return [
        t
        for t in Base.metadata.sorted_tables
        if t.name not in {"concept", "concept_relationship", "concept_map_pending"}
    ]


def _repoint_field_concepts(session: Session) -> int:
    concept = cdm.Concept
    ours = session.execute(
        select(concept.concept_id, concept.concept_name).where(
            concept.vocabulary_id == "CDM",
            concept.concept_class_id == "Field",
            concept.concept_id >= FIRST_ID,
        )
    ).all()
    repointed = 0
    for our_id, name in ours:
        athena_id = session.scalar(
            select(concept.concept_id).where(
                concept.vocabulary_id == "CDM",
                concept.concept_class_id == "Field",
                concept.concept_name == name,
                concept.concept_id < FIRST_ID,
            )
        )
        if athena_id is None:
            continue
        for table in _tables():
            for column in table.c:
                if column.name.endswith("field_concept_id"):
                    result = session.execute(
                        update(table)
                        .where(column == our_id)
                        .values({column.name: athena_id})
                    )
                    repointed += int(getattr(result, "rowcount", 0) or 0)
        session.execute(delete(concept).where(concept.concept_id == our_id))
    return repointed


def _resolve_zeros(session: Session) -> int:
    resolved = 0
    concept = cdm.Concept
    rel = cdm.ConceptRelationship
    for table in _tables():
        names = set(table.c.keys())
        if {"unit_concept_id", "unit_source_value"} <= names:
            ucum = (
                select(concept.concept_id)
                .where(
                    concept.vocabulary_id == "UCUM",
                    concept.standard_concept == "S",
                    concept.concept_code == table.c.unit_source_value,
                )
                .scalar_subquery()
            )
            result = session.execute(
                update(table)
                .where(table.c.unit_concept_id == 0, ucum.is_not(None))
                .values(unit_concept_id=ucum)
            )
            resolved += int(getattr(result, "rowcount", 0) or 0)
        for name in sorted(names):
            if not name.endswith("_source_concept_id"):
                continue
            target_name = name.replace("_source_concept_id", "_concept_id")
            if target_name not in names:
                continue
            mapped = (
                select(rel.concept_id_2)
                .where(
                    rel.concept_id_1 == table.c[name],
                    rel.relationship_id == "Maps to",
                )
                .limit(1)
                .scalar_subquery()
            )
            result = session.execute(
                update(table)
                .where(
                    and_(
                        table.c[target_name] == 0,
                        table.c[name].is_not(None),
                        mapped.is_not(None),
                    )
                )
                .values({target_name: mapped})
            )
            resolved += int(getattr(result, "rowcount", 0) or 0)
    return resolved


def load_athena(
    session: Session,
    folder: Path,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> AthenaReport:
    """Load the Athena files in ``folder`` and re-resolve our zeros and field concepts.

    Parameters
    ----------
    session
        Open session; the caller commits (and a raised error means roll back).
    folder
        The unzipped Athena download.
    progress
        Called as ``progress(file_name, rows_so_far)``.

    Raises
    ------
    AthenaLoadError
        Naming the file and line of a malformed or truncated record, or when the
        folder holds no CONCEPT.csv.
    """
    folder = Path(folder)
    if not (folder / "CONCEPT.csv").is_file():
        raise AthenaLoadError(f"{folder}: no CONCEPT.csv (not an Athena download?)")
    report = AthenaReport()
    for name, model in ATHENA_FILES:
        path = folder / name
        if path.is_file():
            table = model.__table__
            assert isinstance(table, Table)
            report.rows[name] = _load_file(session, path, table, progress)
    session.flush()
    report.maps_created = _create_pending_maps(session)
    report.field_concepts_repointed = _repoint_field_concepts(session)
    report.zeros_resolved = _resolve_zeros(session)
    session.flush()
    return report
