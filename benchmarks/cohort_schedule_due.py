"""`schedule due` for a centre of 10,000 enrolled patients on PostgreSQL (ms).

Starts a throw-away PostgreSQL server (tests/pgserver.py), loads 10,000 consented
patients with an RT course, ~2 toxicity assessments and ~2 PROMs each (bulk COPY),
then times the schedule of the centre (raw computation, and the service call with the
permission check and the audit record) over several runs.

Run: .venv/bin/python benchmarks/cohort_schedule_due.py [N_PATIENTS]
"""

from __future__ import annotations

import datetime
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _start_postgres():  # type: ignore[no-untyped-def]
    """Load tests/pgserver.py by path (the tests folder must not shadow packages)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tests" / "pgserver.py"
    spec = importlib.util.spec_from_file_location("rtcohort_pgserver", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rtcohort_pgserver"] = module
    spec.loader.exec_module(module)
    return module.start_postgres()


from cohort.centres import add_centre  # noqa: E402
from cohort.protocol import ensure_protocol  # noqa: E402
from cohort.schedule import Kind, schedule  # noqa: E402
from cohort.service import schedule_due  # noqa: E402
from cohort.users import ensure_admin, get_user  # noqa: E402
from omop.bulk import bulk_insert  # noqa: E402
from omop.cdm import (  # noqa: E402
    Episode,
    Observation,
    ObservationPeriod,
    Person,
    SurveyConduct,
)
from omop.cohort_tables import Enrolment  # noqa: E402
from omop.database import upgrade  # noqa: E402
from omop.engine import make_engine, session_factory  # noqa: E402
from omop.vocab.registry import our_concept_id  # noqa: E402
from omop.vocab.standard import (  # noqa: E402
    CASE_REPORT_FORM,
    FEMALE,
    MALE,
    NO_MATCHING_CONCEPT,
    REGISTRY,
    RT_COURSE_EPISODE,
)

TODAY = datetime.date(2026, 1, 15)


def load(factory, n: int) -> int:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    with factory.begin() as session:
        ensure_admin(session, "benchmark-pass")
        ensure_protocol(session)
        site = add_centre(session, "BENCH")
        site_id = site.care_site_id
        ids = range(1, n + 1)
        starts = [
            TODAY - datetime.timedelta(days=int(d)) for d in rng.integers(0, 1500, n)
        ]
        ends = [
            s + datetime.timedelta(days=int(d))
            for s, d in zip(starts, rng.integers(20, 50, n), strict=True)
        ]
        bulk_insert(
            session,
            Person,
            (
                {
                    "person_id": i,
                    "gender_concept_id": FEMALE if i % 2 else MALE,
                    "year_of_birth": 1940 + i % 40,
                    "race_concept_id": 0,
                    "ethnicity_concept_id": 0,
                    "care_site_id": site_id,
                    "person_source_value": f"BENCH-{i:026d}",
                }
                for i in ids
            ),
        )
        bulk_insert(
            session,
            Enrolment,
            (
                {
                    "person_id": i,
                    "care_site_id": site_id,
                    "treatment_site": "breast",
                    "protocol_code": "default",
                    "state": "consented",
                    "scope_data": True,
                    "scope_proms": i % 5 != 0,
                    "scope_linkage": False,
                    "first_record_date": starts[i - 1] - datetime.timedelta(days=30),
                    "consented_date": starts[i - 1] - datetime.timedelta(days=30),
                }
                for i in ids
            ),
        )
        bulk_insert(
            session,
            ObservationPeriod,
            (
                {
                    "observation_period_id": i,
                    "person_id": i,
                    "observation_period_start_date": starts[i - 1],
                    "observation_period_end_date": TODAY,
                    "period_type_concept_id": REGISTRY,
                }
                for i in ids
            ),
        )
        bulk_insert(
            session,
            Episode,
            (
                {
                    "episode_id": i,
                    "person_id": i,
                    "episode_concept_id": RT_COURSE_EPISODE,
                    "episode_start_date": starts[i - 1],
                    "episode_end_date": ends[i - 1],
                    "episode_object_concept_id": 0,
                    "episode_type_concept_id": REGISTRY,
                }
                for i in ids
            ),
        )
        # Rows as instruments.store writes them (bulk COPY for speed): the grading
        # OBSERVATION of type Case Report Form, and SURVEY_CONDUCT with the timepoint
        # in timing_concept_id and timing_source_value (m3 for the first, none for the
        # second, which counts by its date only).
        tox, surveys = [], []
        m3 = our_concept_id("RTC Timepoint", "m3")
        for i in ids:
            for k in range(2):
                day = ends[i - 1] + datetime.timedelta(days=int(rng.integers(0, 400)))
                tox.append(
                    {
                        "observation_id": 2 * i + k,
                        "person_id": i,
                        "observation_concept_id": 0,
                        "observation_date": day,
                        "observation_type_concept_id": CASE_REPORT_FORM,
                    }
                )
                surveys.append(
                    {
                        "survey_conduct_id": 2 * i + k,
                        "person_id": i,
                        "survey_concept_id": 0,
                        "survey_end_datetime": datetime.datetime.combine(
                            day, datetime.time(10)
                        ),
                        "assisted_concept_id": 0,
                        "respondent_type_concept_id": 0,
                        "timing_concept_id": m3 if k == 0 else NO_MATCHING_CONCEPT,
                        "timing_source_value": "m3" if k == 0 else None,
                        "collection_method_concept_id": 0,
                        "survey_source_concept_id": 0,
                        "validated_survey_concept_id": 0,
                    }
                )
        bulk_insert(session, Observation, tox)
        bulk_insert(session, SurveyConduct, surveys)
    return site_id


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    server = _start_postgres()
    try:
        engine = make_engine(server.create_database("bench_schedule"))
        upgrade(engine)
        factory = session_factory(engine)
        t0 = time.perf_counter()
        site_id = load(factory, n)
        load_s = time.perf_counter() - t0
        with factory() as session:
            session.execute(__import__("sqlalchemy").text("ANALYZE"))
            session.commit()
        raw, full, items = [], [], 0
        for _ in range(7):
            with factory() as session:
                t = time.perf_counter()
                result = schedule(session, site_id, TODAY)
                raw.append((time.perf_counter() - t) * 1000)
                items = len(result)
            with factory() as session:
                admin = get_user(session, "admin")
                t = time.perf_counter()
                due = schedule_due(
                    session,
                    admin,
                    centre_code="BENCH",
                    today=TODAY,
                    kinds=(Kind.TOXICITY, Kind.PROM),
                )
                session.rollback()
                full.append((time.perf_counter() - t) * 1000)
        title = f"cohort schedule due, PostgreSQL, {n} enrolled patients"
        print(f"{title} (load {load_s:.1f} s)")
        print(f"{'measure':<48} {'median ms':>10} {'min ms':>8}")
        rows = (
            (f"schedule(): all assessments ({items} items)", raw),
            (f"service.schedule_due(): {len(due)} due/overdue/missed", full),
        )
        for label, values in rows:
            print(f"{label:<48} {statistics.median(values):>10.0f} {min(values):>8.0f}")
        engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
