"""Bulk loader throughput: 1,000,000 MEASUREMENT rows into PostgreSQL and SQLite.

Compares ``omop.bulk.bulk_insert`` with a plain ``COPY FROM STDIN`` of the same rows
(pre-formatted text written in large chunks, the fastest psycopg can go) in one run.
Starts its own PostgreSQL server (tests/pgserver.py).
Run: python benchmarks/bulk_load.py
"""

from __future__ import annotations

import datetime
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlalchemy.orm import Session

from omop import cdm
from omop.bulk import bulk_insert
from omop.database import upgrade
from omop.engine import make_engine
from omop.vocab.standard import EHR, FEMALE
from tests.pgserver import start_postgres

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
COLUMNS = (
    "person_id",
    "measurement_concept_id",
    "measurement_date",
    "measurement_type_concept_id",
    "value_as_number",
    "unit_concept_id",
    "unit_source_value",
    "measurement_source_value",
)


def rows(person_id: int) -> list[tuple[object, ...]]:
    day0 = datetime.date(2020, 1, 1)
    return [
        (
            person_id,
            0,
            day0 + datetime.timedelta(days=i % 1000),
            EHR,
            i * 0.01,
            0,
            "Gy",
            "D95%[Gy]",
        )
        for i in range(N)
    ]


def as_text(data: list[tuple[object, ...]]) -> str:
    buf = io.StringIO()
    for r in data:
        buf.write("\t".join(str(v) for v in r))
        buf.write("\n")
    return buf.getvalue()


def setup(url: str) -> tuple[object, int]:
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        person = cdm.Person(
            gender_concept_id=FEMALE,
            year_of_birth=1960,
            race_concept_id=0,
            ethnicity_concept_id=0,
            person_source_value="BENCH",
        )
        session.add(person)
        session.commit()
        return engine, person.person_id


def timed_bulk(engine: object, data: list[tuple[object, ...]]) -> float:
    with Session(engine) as session:  # type: ignore[call-overload]
        started = time.perf_counter()
        bulk_insert(session, cdm.Measurement, data, columns=COLUMNS)
        session.commit()
        elapsed = time.perf_counter() - started
        session.execute(text("DELETE FROM measurement"))
        session.commit()
    return elapsed


def timed_raw_copy(engine: object, payload: str) -> float:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        raw = conn.connection.driver_connection
        started = time.perf_counter()
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY measurement ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            for i in range(0, len(payload), 1 << 20):
                copy.write(payload[i : i + (1 << 20)])
        raw.commit()
        elapsed = time.perf_counter() - started
        conn.execute(text("DELETE FROM measurement"))
        conn.commit()
    return elapsed


def main() -> None:
    server = start_postgres()
    try:
        engine, person_id = setup(server.create_database("bench"))
        data = rows(person_id)
        payload = as_text(data)
        raw = [timed_raw_copy(engine, payload) for _ in range(2)]
        ours = [timed_bulk(engine, data) for _ in range(2)]
        best_raw, best_ours = min(raw), min(ours)
        print(f"PostgreSQL, {N:,} MEASUREMENT rows")
        print(
            f"  raw COPY FROM STDIN : {best_raw:6.2f} s  {N / best_raw:>10,.0f} rows/s"
        )
        print(
            f"  omop.bulk (COPY)    : {best_ours:6.2f} s  "
            f"{N / best_ours:>10,.0f} rows/s"
        )
        print(f"  ratio bulk / raw    : {best_raw / best_ours:.2f} (goal >= 0.7)")
    finally:
        server.stop()
    with tempfile.TemporaryDirectory() as tmp:
        engine, person_id = setup(f"sqlite:///{tmp}/bench.sqlite")
        data = rows(person_id)
        elapsed = timed_bulk(engine, data)
        print(f"SQLite, {N:,} rows: {elapsed:.2f} s  {N / elapsed:,.0f} rows/s")


if __name__ == "__main__":
    main()
