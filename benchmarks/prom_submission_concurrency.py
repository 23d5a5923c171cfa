"""200 concurrent PROM submissions through invitation links, against PostgreSQL.

Each submission runs on its own connection (thread); all start together. Checks that
every form is stored exactly once (no lost update, no duplicate) and that a second wave
re-submitting the same links stores nothing.
Run: python benchmarks/prom_submission_concurrency.py
"""

from __future__ import annotations

import datetime
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from cohort import invitations
from cohort.centres import add_centre
from cohort.consent import record_consent
from cohort.errors import UsedTokenError
from cohort.prom_link import submit_prom_by_link
from omop.cdm import Measurement, Observation, SurveyConduct
from omop.database import upgrade
from omop.engine import make_engine, session_factory
from rtcohort.wiring import after_upgrade
from tests.pgserver import start_postgres

N = 200
KEY = bytes(range(32))
NOW = datetime.datetime(2025, 5, 1, 9, tzinfo=datetime.UTC)
ANSWERS = {i: (1 + i % 4 if i <= 28 else 1 + i % 7) for i in range(1, 31)}


def wave(factory, tokens: list[str]) -> tuple[list[str], float]:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(len(tokens) + 1)
    results: list[str] = []
    lock = threading.Lock()

    def worker(token: str) -> None:
        barrier.wait()
        try:
            with factory.begin() as s:
                submit_prom_by_link(s, KEY, token, ANSWERS, now=NOW)
            outcome = "stored"
        except UsedTokenError:
            outcome = "used"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def main() -> None:
    server = start_postgres()
    try:
        engine = make_engine(
            server.create_database("prom"), pool_size=N, max_overflow=0
        )
        upgrade(engine)
        after_upgrade(engine)
        factory = session_factory(engine)
        with factory.begin() as s:
            site = add_centre(s, "BENCH")
            tokens = []
            for i in range(N):
                event = record_consent(
                    s,
                    centre=site,
                    pseudonym=f"BENCH-{i:04d}",
                    state="consented",
                    event_date=NOW.date(),
                    actor="bench",
                    year_of_birth=1960,
                    sex="F",
                    site="breast",
                )
                tokens.append(
                    invitations.issue(s, KEY, event.person_id, "m3", now=NOW).token
                )
        with engine.connect():
            pass
        first, elapsed = wave(factory, tokens)
        second, _ = wave(factory, tokens)
        with factory() as s:
            surveys = s.scalar(select(func.count()).select_from(SurveyConduct))
            per_person = s.execute(
                select(SurveyConduct.person_id, func.count()).group_by(
                    SurveyConduct.person_id
                )
            ).all()
            answers = s.scalar(select(func.count()).select_from(Observation))
            scores = s.scalar(select(func.count()).select_from(Measurement))
        print(f"{N} concurrent submissions (one connection each), PostgreSQL")
        print(
            f"  first wave : {first.count('stored')} stored, {first.count('used')} "
            f"refused; {elapsed:.2f} s = {N / elapsed:.0f} submissions/s"
        )
        print(
            f"  second wave (same links): {second.count('stored')} stored, "
            f"{second.count('used')} refused as used"
        )
        print(
            f"  rows: {surveys} survey_conduct, max per person "
            f"{max(n for _, n in per_person)}, {answers} answers, {scores} scores"
        )
        ok = (
            surveys == N
            and first.count("stored") == N
            and second.count("stored") == 0
            and answers == N * 30
        )
        print("  exactly once: " + ("yes" if ok else "NO"))
        engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
