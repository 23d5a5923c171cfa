"""The permission matrix: every command and service function on patient data x role.

One database per backend for the module, built through production writers only (the
``rtcohort`` commands as the operator, phantom DICOM through ``rtcohort import``,
FHIR files written by ``instruments.fhir``). Each case acts as one role at its own
centre (C1) or another (C2), or as an unknown / malformed name, or with no, wrong,
expired or revoked credentials. Allowed cases succeed; refused ones exit 2 (CLI) or
raise PermissionDeniedError / AuthenticationError (services), change no row, and
leave a refusal in the audit trail. Expected outcomes come from the role model of
ARCHITECTURE.md section 5, written out here, not from ``cohort.permissions``.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cohort.errors import AuthenticationError, PermissionDeniedError
from etl.deid.keys import load_key
from tests.permission_world import (
    ROLES,
    USER,
    World,
    act_as,
    assert_refused,
    cli,
    counts,
    ok,
    refusals,
    world,
)

__all__ = ["world"]  # the module-scoped database fixture


# ---- expected outcomes: the role model written out (ARCHITECTURE.md section 5) ----
def _write(role: str, own: bool) -> bool:
    return role == "admin" or (own and role in ("data_manager", "clinician"))


def _read(role: str, own: bool) -> bool:
    return _write(role, own)


def _erase(role: str, own: bool) -> bool:
    return role == "admin" or (own and role == "data_manager")


def _export(role: str, own: bool) -> bool:
    return role in ("admin", "data_manager", "researcher")


def _manage(role: str, own: bool) -> bool:
    return role == "admin"


Args = Callable[[World, str], list[str]]


def _k(w: World, c: str) -> list[str]:
    return ["--centre", c, "--key-file", str(w.key(c))]


# command, arguments for centre c, expected rule, whether an allowed run may be made
CLI_CASES: list[tuple[str, Args, Callable[[str, bool], bool], bool]] = [
    (
        "followup",
        lambda w, c: [
            "followup",
            "record",
            "--pseudonym",
            w.pseudo(c),
            "--centre",
            c,
            "--last-contact",
            "2025-07-01",
        ],
        _write,
        True,
    ),
    ("schedule", lambda w, c: ["schedule", "due", "--centre", c], _read, True),
    (
        "invite",
        lambda w, c: ["invite", "--centre", c, "--timepoint", "m3"],
        _read,
        True,
    ),
    (
        "toxicity",
        lambda w, c: ["toxicity", "import", str(w.root / f"tox-{c}.json"), *_k(w, c)],
        _write,
        True,
    ),
    (
        "prom",
        lambda w, c: ["prom", "import", str(w.root / f"prom-{c}.json"), *_k(w, c)],
        _write,
        True,
    ),
    (
        "import",
        lambda w, c: ["import", str(w.root / "dicom" / c), *_k(w, c)],
        _write,
        True,
    ),
    (
        "mapping",
        lambda w, c: ["mapping", "import", str(w.root / f"rules-{c}.csv")],
        _write,
        True,
    ),
    (
        "withdraw",
        lambda w, c: ["withdraw", "--pseudonym", w.pseudo(c), "--centre", c, "--erase"],
        _erase,
        False,
    ),
    (
        "consent",
        lambda w, c: [
            "consent",
            "record",
            "--pseudonym",
            f"{c}-NEW",
            "--centre",
            c,
            "--state",
            "eligible",
            "--year-of-birth",
            "1960",
            "--sex",
            "M",
        ],
        _write,
        False,
    ),
]
GLOBAL_CASES: list[tuple[str, Args, Callable[[str, bool], bool]]] = [
    (
        "export",
        lambda w, c: ["export", "dose-metrics", "--out", str(w.root / "m.csv")],
        _export,
    ),
    ("report", lambda w, c: ["report", "structures"], _export),
    ("users-list", lambda w, c: ["users", "list"], _manage),
    ("quarantine-all", lambda w, c: ["quarantine", "list", "--all"], _manage),
    ("quarantine", lambda w, c: ["quarantine", "list"], lambda r, o: _write(r, True)),
    ("audit-verify", lambda w, c: ["audit", "verify"], _manage),
    ("audit-show", lambda w, c: ["audit", "show", "--person", w.pseudo("C1")], _manage),
    (
        "attach",
        lambda w, c: ["project", "attach", "P1", "--rule-centre", "C1"],
        _manage,
    ),
    (
        "trigger",
        lambda w, c: ["trigger", "add", "P1", "--kind", "roi", "--pattern", "X*"],
        _manage,
    ),
    # a token: the user's own, or anyone's for a manager
    (
        "token",
        lambda w, c: ["users", "token", "create", "pt1"],
        lambda r, o: r in ("admin", "patient"),
    ),
]


@pytest.mark.parametrize("role", ROLES)
def test_cli_matrix(world: World, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    name = USER[role]
    act_as(monkeypatch, world, name)
    for (what, args, rule, run_allowed), centre in itertools.product(
        CLI_CASES, ("C1", "C2")
    ):
        allowed = rule(role, centre == "C1")
        if allowed and run_allowed:
            result = cli(*args(world, centre))
            assert result.exit_code in (0, 1), (role, what, centre, result.output)
            assert "error" not in result.output, (role, what, centre, result.output)
        elif not allowed:
            assert_refused(world, name, args(world, centre))
    for what, args, rule in GLOBAL_CASES:
        if rule(role, True):
            result = cli(*args(world, "C1"))
            assert result.exit_code == 0, (role, what, result.output)
        else:
            assert_refused(world, name, args(world, "C1"))


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("nobody", None),  # unknown name
        ("", None),  # empty
        (" cl1", None),  # surrounding space: never stripped
        ("CL1", None),  # capitals: never folded
        ("cl1", ""),  # no credentials
        ("cl1", "not-a-token"),  # wrong token
        ("cl1", "res1"),  # another user's token
    ],
)
def test_cli_refuses_without_valid_credentials(
    world: World, name: str, token: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = world.tokens["res1"] if token == "res1" else token
    monkeypatch.setenv("RTCOHORT_USER", name)
    if tok:
        monkeypatch.setenv("RTCOHORT_TOKEN", tok)
    else:
        monkeypatch.delenv("RTCOHORT_TOKEN", raising=False)
    for what, args, _rule, _run in CLI_CASES[:4]:
        del what
        assert_refused(world, name, args(world, "C1"), "authentication required")


def test_expired_and_revoked_tokens_and_lockout(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cohort.auth import create_token
    from cohort.users import get_user
    from omop.engine import session_factory

    factory = session_factory(world.engine)
    act_as(monkeypatch, world, None)
    ok("users", "add", "exp1", "--role", "clinician", "--centre", "C1")
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
    with factory.begin() as s:
        expired = create_token(s, get_user(s, "admin"), "exp1", days=1, now=past).token
    args = CLI_CASES[0][1](world, "C1")
    act_as(monkeypatch, world, "exp1", expired)
    assert_refused(world, "exp1", args, "expired token")
    act_as(monkeypatch, world, None)
    fresh = ok("users", "token", "create", "exp1", "--days", "1").split()[-1]
    act_as(monkeypatch, world, "exp1", fresh)
    ok(*args)  # the clinician writes at their own centre
    act_as(monkeypatch, world, None)
    assert "2 token(s)" in ok("users", "token", "revoke", "exp1")  # expired too
    act_as(monkeypatch, world, "exp1", fresh)
    assert_refused(world, "exp1", args, "revoked token")
    # lockout: 5 failures in 10 minutes lock the name, even for a valid token
    act_as(monkeypatch, world, None)
    ok("users", "add", "lock1", "--role", "clinician", "--centre", "C1")
    good = ok("users", "token", "create", "lock1").split()[-1]
    for _ in range(5):
        act_as(monkeypatch, world, "lock1", "wrong")
        assert_refused(world, "lock1", args, "wrong token")
    act_as(monkeypatch, world, "lock1", good)
    assert_refused(world, "lock1", args, "locked")


def test_commands_without_database_do_not_authenticate(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RTCOHORT_USER", "nobody")
    monkeypatch.setenv(
        "RTCOHORT_DATABASE_URL", "postgresql+psycopg://x@nowhere.invalid/x"
    )
    ok("keys", "new", "--centre", "ZZ", "--out", str(tmp_path / "z.key"))
    ok(
        "phantom",
        str(tmp_path / "ph"),
        "--shape",
        "sphere",
        "--size-mm",
        "20",
        "--seed",
        "1",
    )
    ok("dvh", str(tmp_path / "ph"))


# ---------------------------------------------------------------- services
def _service_cases(world: World) -> list[tuple[str, Callable[..., Any], Any]]:
    from cohort import operations, service
    from cohort.clinical_import import import_toxicity
    from etl.ingest.run import run_import
    from etl.mapping.naming import parse_rules_csv
    from etl.store.export import dose_metric_table
    from ntcp.dataset import DatasetSpec, extract_dataset
    from omop.engine import session_factory
    from rtcohort.wiring import CohortExportAccess, ingest_options

    today = datetime.date(2025, 7, 1)

    def tox(s: Session, u: Any, c: str) -> Any:
        return import_toxicity(
            s, load_key(world.key(c), c), c, world.root / f"tox-{c}.json", actor=u
        )

    def rules(s: Session, u: Any, c: str) -> Any:
        text_ = (world.root / f"rules-{c}.csv").read_text()
        return operations.import_mapping_rules(
            s, u, parse_rules_csv(text_), source="r.csv", text=text_
        )

    def dicom(s: Session, u: Any, c: str) -> Any:
        del s
        opts = ingest_options(c, world.key(c), actor=u.username)
        return run_import(
            session_factory(world.engine), [world.root / "dicom" / c], opts
        )

    def dataset(s: Session, u: Any, c: str) -> Any:
        spec = DatasetSpec("Heart", "ctcae:Pneumonitis>=2@365d", centre=c)
        return extract_dataset(s, u, spec)

    def export(s: Session, u: Any, c: str) -> Any:
        return dose_metric_table(s, access=CohortExportAccess(s, u.username))

    return [
        (
            "followup",
            lambda s, u, c: service.record_followup(
                s, u, centre_code=c, pseudonym=world.pseudo(c), last_contact=today
            ),
            _write,
        ),
        (
            "schedule",
            lambda s, u, c: service.schedule_due(s, u, centre_code=c, today=today),
            _read,
        ),
        ("toxicity", tox, _write),
        ("mapping", rules, _write),
        ("dicom", dicom, _write),
        (
            "dataset",
            dataset,
            lambda r, o: r == "admin" or (o and r in ("data_manager", "clinician")),
        ),
        ("export", export, _export),
        (
            "patients",
            lambda s, u, c: service.export_patients(s, u, today=today),
            _export,
        ),
        ("users", lambda s, u, c: operations.users_list(s, u), _manage),
        (
            "quarantine",
            lambda s, u, c: operations.quarantine_items(s, u, include_released=True),
            _manage,
        ),
        ("audit", lambda s, u, c: operations.verify_audit(s, u), _manage),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_service_matrix(world: World, role: str) -> None:
    from cohort.users import get_user
    from omop.engine import session_factory

    factory = session_factory(world.engine)
    name = USER[role]
    for (what, fn, rule), centre in itertools.product(
        _service_cases(world), ("C1", "C2")
    ):
        with factory() as s:
            user = get_user(s, name)
            s.expunge(user)
        if rule(role, centre == "C1"):
            with factory.begin() as s:
                fn(s, s.merge(user), centre)
            continue
        before, seen = counts(world.engine), refusals(world.engine, name)
        with pytest.raises(PermissionDeniedError), factory.begin() as s:
            fn(s, s.merge(user), centre)
        assert counts(world.engine) == before, (role, what, centre)
        assert refusals(world.engine, name) > seen, (role, what, centre)


@pytest.mark.parametrize("name", ["nobody", "", " admin", "Admin"])
def test_service_refuses_unknown_and_malformed_names(world: World, name: str) -> None:
    from cohort.auth import sign_in
    from cohort.clinical_import import import_toxicity
    from cohort.operations import users_list
    from omop.engine import session_factory

    factory = session_factory(world.engine)
    key = load_key(world.key("C1"), "C1")
    calls = [
        lambda s: import_toxicity(s, key, "C1", world.root / "tox-C1.json", actor=name),
        lambda s: users_list(s, name),
        lambda s: sign_in(
            s, name, password="admin-password", now=datetime.datetime.now(datetime.UTC)
        ),
    ]
    for call in calls:
        before, seen = counts(world.engine), refusals(world.engine, name)
        with pytest.raises(AuthenticationError), factory.begin() as s:
            call(s)
        assert counts(world.engine) == before
        assert refusals(world.engine, name) > seen


def test_sign_in_accepts_password_and_token(world: World) -> None:
    from cohort.auth import sign_in
    from omop.engine import session_factory

    now = datetime.datetime.now(datetime.UTC)
    with session_factory(world.engine).begin() as s:
        assert sign_in(s, "admin", password="admin-password", now=now).role == "admin"
        assert (
            sign_in(s, "res1", token=world.tokens["res1"], now=now).username == "res1"
        )
        with pytest.raises(AuthenticationError):
            sign_in(s, "res1", token=world.tokens["cl1"], now=now)
