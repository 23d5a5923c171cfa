"""FHIR ingest: QuestionnaireResponses per second, parsed, scored and stored in OMOP.

One Bundle of N QuestionnaireResponses (hospital identifiers, 10 % missing answers) for
N/4 patients is imported through the same path as ``rtcohort prom import`` (parse with
the fhir.resources R4B models, pseudonymise, score, write SURVEY_CONDUCT + 30
OBSERVATION + 16 MEASUREMENT rows each, audit) in one transaction, into PostgreSQL
(own server, tests/pgserver.py) and SQLite. Run: python benchmarks/fhir_ingest.py [N]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from sqlalchemy.orm import Session

from cohort.centres import add_centre
from cohort.clinical_import import import_proms
from etl.deid.keys import new_key
from etl.deid.pseudonymise import pseudonym
from instruments.fhir import (
    PromResponse,
    SubjectIdentifier,
    bundle,
    parse_questionnaire_responses,
    questionnaire_response,
)
from omop import cdm
from omop.database import upgrade
from omop.engine import make_engine
from omop.vocab.standard import MALE
from tests.pgserver import start_postgres

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
TIMEPOINTS = ("baseline", "eot", "m3", "m6")


def make_bundle(key_centre: str, rng: np.random.Generator) -> tuple[str, list[str]]:
    hospital_ids = [f"H{i:06d}" for i in range(N // 4)]
    resources = []
    for i in range(N):
        values: dict[int, int | None] = {}
        for n in range(1, 31):
            top = 7 if n >= 29 else 4
            values[n] = None if rng.random() < 0.1 else int(rng.integers(1, top + 1))
        resources.append(
            questionnaire_response(
                PromResponse(
                    resource_id=f"{key_centre}-qr-{i}",
                    instrument="QLQ-C30",
                    subject=SubjectIdentifier("urn:oid:1.2.3", hospital_ids[i // 4]),
                    authored=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i % 300),
                    values=values,
                    timepoint=TIMEPOINTS[i % 4],
                )
            )
        )
    return json.dumps(bundle(resources)), hospital_ids


def run(url: str, label: str, tmp: Path) -> list[tuple[str, str]]:
    engine = make_engine(url)
    upgrade(engine)
    key = new_key("BENCH")
    text, hospital_ids = make_bundle("BENCH", np.random.default_rng(1))
    path = tmp / f"{label}.json"
    path.write_text(text)
    with Session(engine) as session, session.begin():
        site = add_centre(session, "BENCH")
        session.add_all(
            cdm.Person(
                gender_concept_id=MALE,
                year_of_birth=1950,
                race_concept_id=0,
                ethnicity_concept_id=0,
                care_site_id=site.care_site_id,
                person_source_value=pseudonym(key, hid),
            )
            for hid in hospital_ids
        )
    start = time.perf_counter()
    parse_questionnaire_responses(text)
    t_parse = time.perf_counter() - start
    start = time.perf_counter()
    with Session(engine) as session, session.begin():
        summary = import_proms(session, key, "BENCH", path, actor="admin")
    t_all = time.perf_counter() - start
    engine.dispose()
    assert sum(summary.outcomes.values()) == N
    return [
        (f"{label}: parse + validate only (QR/s)", f"{N / t_parse:,.0f}"),
        (f"{label}: full import (QR/s)", f"{N / t_all:,.0f}"),
        (f"{label}: full import ({N} QR, s)", f"{t_all:.2f}"),
    ]


def main() -> None:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += run(f"sqlite:///{Path(tmp) / 'b.sqlite'}", "SQLite", Path(tmp))
        server = start_postgres()
        try:
            rows += run(server.create_database("fhir_bench"), "PostgreSQL", Path(tmp))
        finally:
            server.stop()
    print(f"{'figure':<44} {'value':>12}")
    for name, value in rows:
        print(f"{name:<44} {value:>12}")


if __name__ == "__main__":
    main()
