"""The cohort commands end to end, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.deid.keys import load_key
from etl.deid.pseudonymise import pseudonym


def test_cli_end_to_end(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key_file = tmp_path / "c1.key"
    run("centre", "add", "C1", "--name", "Centre one")
    run("centre", "add", "C1", code=2)  # twice
    run("keys", "new", "--centre", "C1", "--out", str(key_file))
    k = ["--centre", "C1", "--key-file", str(key_file)]
    out = run(
        "consent",
        "record",
        "H-1",
        *k,
        "--state",
        "consented",
        "--version",
        "2",
        "--date",
        "2025-01-10",
        "--year-of-birth",
        "1950",
        "--sex",
        "F",
        "--site",
        "breast",
        "--email",
        "p@example.org",
    )
    p1 = pseudonym(load_key(key_file), "H-1")
    assert p1 in out
    assert "H-1" not in out
    run("consent", "record", "H-1", *k, "--state", "consented", code=2)  # twice
    run(
        "consent",
        "record",
        "H-2",
        *k,
        "--state",
        "declined",
        "--year-of-birth",
        "1960",
        "--sex",
        "M",
    )
    out = run("withdraw", "H-2", *k, code=2)  # declined -> withdrawn
    assert "not allowed" in out
    out = run("withdraw", "H-2", *k, "--erase")  # but a declined person is erased
    assert "erased:" in out
    run(
        "consent",
        "record",
        "H-3",
        "--centre",
        "NOPE",
        "--pseudonym",
        "NOPE-X",
        "--state",
        "eligible",
        "--year-of-birth",
        "1960",
        "--sex",
        "M",
        code=2,
    )
    run("followup", "record", "H-1", *k, "--last-contact", "2025-03-01")
    run("followup", "record", "H-9", *k, "--death", "2025-03-01", code=2)  # unknown
    out = run("schedule", "due", *k)
    assert "0 due" in out
    run("users", "add", "res", "--role", "researcher")
    assert "researcher" in run("users", "list")
    run(
        "project",
        "create",
        "P1",
        "--name",
        "n",
        "--protocol",
        "p",
        "--controller",
        "c",
        "--expires",
        "2099-01-01",
    )
    run(
        "project",
        "create",
        "P0",
        "--name",
        "n",
        "--protocol",
        "p",
        "--controller",
        "c",
        "--expires",
        "2000-01-01",
        code=2,
    )  # past expiry
    run("project", "add-member", "P1", "res", "--role", "analyst")
    assert "1 patients" in run("project", "attach", "P1", "--rule-centre", "C1")
    assert "0 invitations" in run("invite", *k, "--timepoint", "m3")
    out = run("audit", "show", "--person", p1)
    assert "consent.record" in out
    assert "project.attach" in out
    out = run("withdraw", "H-1", *k, "--erase")
    assert "no row of the person remains" in out
    assert "person" in out
    assert "intact" in run("audit", "verify")
    run("audit", "show", "--person", p1, code=2)  # erased: unknown person


def test_cli_acts_as_rtcohort_user(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    run("centre", "add", "C1")
    run("users", "add", "viewer1", "--role", "viewer", "--centre", "C1")
    # acting as another user needs that user's credentials (issue 12): a token
    token = run("users", "token", "create", "viewer1").split()[-1]
    monkeypatch.setenv("RTCOHORT_USER", "viewer1")
    monkeypatch.setenv("RTCOHORT_TOKEN", token)
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    out = run(
        "consent",
        "record",
        "--pseudonym",
        "C1-X",
        "--centre",
        "C1",
        "--state",
        "eligible",
        "--year-of-birth",
        "1960",
        "--sex",
        "M",
        code=2,
    )
    assert "may not write" in out
    run("centre", "add", "C2", code=2)
