"""The database of the permission matrix (``tests/test_permission_matrix.py``).

One database per backend for the test module, built through production writers only:
the ``rtcohort`` commands as the operator, phantom DICOM (``etl.phantom.write``) through
``rtcohort import``, FHIR files written by ``instruments.fhir``. Two centres (C1, C2)
with one consented patient each; one user of every role at C1 (the researcher
through project P1), each with a personal API token. Helpers run a command as a
user and assert a refusal: exit 2, no row changed, a refusal in the audit trail.
"""

from __future__ import annotations

import datetime
import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from etl.deid.keys import load_key
from etl.deid.pseudonymise import pseudonym
from omop.cohort_tables import AuditRecord
from rtcohort.cli import app

runner = CliRunner()
ROLES = ("admin", "data_manager", "clinician", "researcher", "viewer", "patient")
USER = {
    "admin": "admin",
    "data_manager": "dm1",
    "clinician": "cl1",
    "researcher": "res1",
    "viewer": "vw1",
    "patient": "pt1",
}
HID = {"C1": "H-1", "C2": "H-2"}  # one consented patient per centre
COUNTED = (
    "person",
    "observation",
    "condition_occurrence",
    "measurement",
    "survey_conduct",
    "episode",
    "image_occurrence",
    "dvh",
    "ingest_dataset",
    "quarantine_item",
    "mapping_rule",
    "mapping_ruleset",
    "project_patient",
    "project_trigger",
    "consent_event",
    "invitation",
    "app_user",
    "api_token",
    "care_site",
    "observation_period",
)
_n = itertools.count()


@dataclass
class World:
    engine: Engine
    root: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def key(self, centre: str) -> Path:
        return self.root / f"{centre}.key"

    def pseudo(self, centre: str) -> str:
        return pseudonym(load_key(self.key(centre)), HID[centre])


def cli(*args: str) -> Any:
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    return runner.invoke(app, list(args))


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, (args, result.output)
    return str(result.output)


def write_outcomes(world: World, centre: str) -> None:
    from instruments.fhir import PromResponse, SubjectIdentifier, bundle
    from instruments.fhir import questionnaire_response as qr
    from instruments.fhir_adverse_event import ToxicityGrading, adverse_event

    subject = SubjectIdentifier("urn:oid:2.16.528.1.1007.3.3", HID[centre])
    day = datetime.date(2025, 6, 1)
    grading = ToxicityGrading(
        f"tox-{centre}", subject, "5.0", "Pneumonitis", 3, day, timepoint="m3"
    )
    (world.root / f"tox-{centre}.json").write_text(
        json.dumps(bundle([adverse_event(grading)]))
    )
    authored = datetime.datetime(2025, 6, 1, 10, tzinfo=datetime.UTC)
    prom = PromResponse(
        f"qlq-{centre}",
        "QLQ-C30",
        subject,
        authored,
        dict.fromkeys(range(1, 31), 2),
        timepoint="m3",
    )
    (world.root / f"prom-{centre}.json").write_text(json.dumps(bundle([qr(prom)])))
    (world.root / f"rules-{centre}.csv").write_text(
        f"centre,pattern,kind,tg263_name\n{centre},HERZ{centre},exact,Heart\n"
    )


def build(world: World) -> None:
    from tests.etl.ingest_corpus import write_patient

    ok("db", "upgrade")
    for n, centre in enumerate(("C1", "C2")):
        ok("centre", "add", centre)
        ok("keys", "new", "--centre", centre, "--out", str(world.key(centre)))
        k = ["--centre", centre, "--key-file", str(world.key(centre))]
        ok(
            "consent",
            "record",
            HID[centre],
            *k,
            "--state",
            "consented",
            "--date",
            "2025-01-10",
            "--year-of-birth",
            "1950",
            "--sex",
            "F",
            "--site",
            "lung",
            "--email",
            "p@example.org",
        )
        write_patient(world.root / "dicom" / centre, HID[centre], 700 + n)
        ok("import", str(world.root / "dicom" / centre), *k)
        write_outcomes(world, centre)
    for role, name in USER.items():
        if role == "admin":
            continue
        centre = (
            ["--centre", "C1"]
            if role in ("data_manager", "clinician", "viewer")
            else []
        )
        ok("users", "add", name, "--role", role, *centre)
        world.tokens[name] = ok("users", "token", "create", name).split()[-1]
    ok(
        "project",
        "create",
        "P1",
        "--name",
        "p",
        "--protocol",
        "x",
        "--controller",
        "c",
        "--expires",
        "2099-12-31",
    )
    ok("project", "add-member", "P1", "res1")
    ok("project", "attach", "P1", "--rule-centre", "C1")


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from omop.engine import make_engine

    backend = request.param
    if request.config.getoption("--db") not in ("both", backend):
        pytest.skip(f"--db excludes {backend}")
    root = tmp_path_factory.mktemp("matrix")
    if backend == "sqlite":
        url = f"sqlite:///{root / 'm.sqlite'}"
    else:
        url = request.getfixturevalue("pg_server").create_database(
            f"matrix_{next(_n)}_{uuid.uuid4().hex[:8]}"
        )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RTCOHORT_DATABASE_URL", url)
        mp.setenv("RTCOHORT_DATA_DIR", str(root / "data"))
        mp.setenv("RTCOHORT_ADMIN_PASSWORD", "admin-password")
        mp.delenv("RTCOHORT_USER", raising=False)
        mp.delenv("RTCOHORT_TOKEN", raising=False)
        engine = make_engine(url)
        from rtcohort.wiring import configure_audit

        w = World(engine, root)
        build(w)
        configure_audit(engine)
        yield w
        engine.dispose()


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in COUNTED
        }


def refusals(engine: Engine, actor: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(AuditRecord)
                .where(AuditRecord.actor == actor[:64])
                .where(AuditRecord.detail.like("refused:%"))
            ).scalar_one()
        )


def act_as(
    monkeypatch: pytest.MonkeyPatch,
    world: World,
    name: str | None,
    token: str | None = None,
) -> None:
    if name is None or name == "admin":
        monkeypatch.delenv("RTCOHORT_USER", raising=False)
        monkeypatch.delenv("RTCOHORT_TOKEN", raising=False)
        return
    monkeypatch.setenv("RTCOHORT_USER", name)
    tok = token if token is not None else world.tokens.get(name)
    if tok is None:
        monkeypatch.delenv("RTCOHORT_TOKEN", raising=False)
    else:
        monkeypatch.setenv("RTCOHORT_TOKEN", tok)


def assert_refused(
    world: World, actor: str, args: list[str], message: str = ""
) -> None:
    before, seen = counts(world.engine), refusals(world.engine, actor)
    result = cli(*args)
    assert result.exit_code == 2, (actor, args, result.output)
    assert message in result.output, (actor, args, result.output)
    assert counts(world.engine) == before, (actor, args)
    assert refusals(world.engine, actor) > seen, (actor, args, "refusal not audited")
