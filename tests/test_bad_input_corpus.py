"""The bad-input corpus of issue 13 through every command, on both backends.

Each input of the issue's table (docs/bad-input.md) and the ones handled before it
is fed to the command a user would run. Each must end with: no traceback, one clear
message naming the file or field and the reason, the documented exit code, and
nothing stored (the row count of every table but the audit trail, the quarantine and
the ingest bookkeeping is unchanged).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from omop.engine import make_engine
from rtcohort.cli import app
from tests.bad_inputs import (
    CSV_HEADER,
    deep_json,
    phantom_folder,
    prom_resource,
    pydicom_rt_files,
    row_counts,
    set_attribute,
    toxicity_resource,
    write_json,
)

runner = CliRunner()
FUTURE = datetime.date(3000, 1, 1)


@dataclass
class World:
    root: Path
    engine: Engine
    k: list[str] = field(default_factory=list)

    def run(self, *args: str) -> Result:
        return runner.invoke(app, list(args))


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.output


def _clean(result: Result, code: int | tuple[int, ...], *fragments: str) -> None:
    """No traceback, the exit code, every fragment in the output."""
    codes = (code,) if isinstance(code, int) else code
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception),
        output,
    )
    assert result.exit_code in codes, (result.exit_code, output)
    for fragment in fragments:
        assert fragment in output, (fragment, output)


@pytest.fixture
def world(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "correct horse battery")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    # a database that was never migrated: one line, exit 2, the fix named
    for args in (("centre", "add", "NEV01"), ("users", "list"), ("audit", "verify")):
        result = runner.invoke(app, list(args))
        _clean(result, 2, "rtcohort db upgrade")
        assert result.output.strip().count("\n") == 0, result.output
    _ok("db", "upgrade")
    for centre in ("BIC01", "OTH01"):
        _ok("centre", "add", centre)
        _ok("keys", "new", "--centre", centre, "--out", str(tmp_path / f"{centre}.key"))
    w = World(tmp_path, make_engine(fresh_url))
    w.k = ["--centre", "BIC01", "--key-file", str(tmp_path / "BIC01.key")]
    _ok("consent", "record", "H-1", *w.k, "--state", "consented", "--date",
        "2024-01-02", "--year-of-birth", "1950", "--sex", "F")  # fmt: skip
    good = write_json(tmp_path / "good" / "qr.json", prom_resource("H-1"))
    assert ": stored" in _ok("prom", "import", str(good), *w.k)
    tox = write_json(tmp_path / "good" / "ae.json", toxicity_resource("H-1"))
    assert ": stored" in _ok("toxicity", "import", str(tox), *w.k)
    return w


Case = tuple[str, Callable[[World], Result], int | tuple[int, ...], tuple[str, ...]]


def _prom(name: str, data: object) -> Callable[[World], Result]:
    def run(w: World) -> Result:
        path = write_json(w.root / "bad" / f"{name}.json", data)
        return w.run("prom", "import", str(path), *w.k)

    return run


def _tox(name: str, data: object, *extra: str) -> Callable[[World], Result]:
    def run(w: World) -> Result:
        path = w.root / "bad" / name
        if isinstance(data, str):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data, encoding="utf-8")
        else:
            write_json(path, data)
        return w.run("toxicity", "import", str(path), *w.k, *extra)

    return run


def _raw(kind: str, name: str, data: bytes) -> Callable[[World], Result]:
    def run(w: World) -> Result:
        path = w.root / "bad" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return w.run(kind, "import", str(path), *w.k)

    return run


def _deep(kind: str) -> Callable[[World], Result]:
    def run(w: World) -> Result:
        path = deep_json(w.root / "bad" / f"deep-{kind}.json")
        return w.run(kind, "import", str(path), *w.k)

    return run


def _coding_system() -> dict[str, object]:
    data = prom_resource("H-1", rid="loinc")
    data["item"][0]["answer"][0]["valueCoding"]["system"] = "http://loinc.org"
    data["item"][0]["answer"][0]["valueCoding"]["code"] = "3"
    return data


def _bad_answer() -> dict[str, object]:
    data = prom_resource("H-1", rid="seven")
    data["item"][0]["answer"][0]["valueCoding"]["code"] = "7"
    return data


FHIR_CASES: list[Case] = [
    ("FHIR nested 3000 levels (prom)", _deep("prom"), 2, ("deep-prom.json", "nested")),
    ("FHIR nested 3000 levels (toxicity)", _deep("toxicity"), 2,
     ("deep-toxicity.json", "nested")),
    ("PROM same id, other answers", _prom("changed", prom_resource("H-1", 3)), 2,
     ("changed.json QuestionnaireResponse/a: refused",)),
    ("toxicity grade changed", _tox("regrade.json", toxicity_resource("H-1", 1)), 2,
     ("regrade.json", "refused")),
    ("PROM authored 3000-01-01",
     _prom("future", prom_resource("H-1", 1, FUTURE, rid="f")), 2,
     ("future.json", "3000-01-01", "future")),
    ("toxicity assessed 3000-01-01",
     _tox("future.csv", CSV_HEADER + "H-1,m6,3000-01-01,5.0,Dry mouth,1,\n"), 2,
     ("future.csv line 2", "3000-01-01", "future")),
    ("valueCoding of another system", _prom("loinc", _coding_system()), 2,
     ("loinc.json", "system")),
    ("QLQ-C30 answer out of range", _prom("seven", _bad_answer()), 2,
     ("seven.json", "q1")),
    ("a grade the term lacks",
     _tox("grade5.csv", CSV_HEADER + "H-1,m6,2024-05-20,5.0,Dry mouth,5,\n"), 2,
     ("grade5.csv line 2", "grade")),
    ("unknown patient", _prom("nobody", prom_resource("H-404", rid="n")), 2,
     ("nobody.json",)),
    ("wrong keys", _prom("keys", {"resourceType": "QuestionnaireResponse",
                                  "foo": 1}), 2, ("keys.json",)),
    ("not JSON", _raw("prom", "syntax.json", b'{"resourceType": '), 2,
     ("syntax.json",)),
    ("not UTF-8 (prom)", _raw("prom", "latin1.json", '{"x": "é"}'.encode("latin-1")),
     2, ("latin1.json",)),
    ("not UTF-8 (toxicity CSV)",
     _raw("toxicity", "latin1.csv", (CSV_HEADER + "é\n").encode("latin-1")), 2,
     ("latin1.csv",)),
    ("missing file", lambda w: w.run("prom", "import", str(w.root / "nope.json"),
                                     *w.k), 2, ("nope.json", "No such file")),
    ("a folder, not a file", lambda w: w.run("toxicity", "import", str(w.root), *w.k),
     2, ("Is a directory",)),
    ("key of another centre",
     lambda w: w.run("prom", "import", str(w.root / "good" / "qr.json"), "--centre",
                     "BIC01", "--key-file", str(w.root / "OTH01.key")), 2,
     ("OTH01",)),
]  # fmt: skip

COHORT_CASES: list[Case] = [
    ("consent record ''",
     lambda w: w.run("consent", "record", "", *w.k, "--state", "consented",
                     "--year-of-birth", "1950", "--sex", "F"), 2, ("patient id",)),
    ("a pseudonym of another centre",
     lambda w: w.run("consent", "record", "--pseudonym", "OTH-ABC", "--centre",
                     "BIC01", "--state", "consented", "--year-of-birth", "1950",
                     "--sex", "F"), 2, ("pseudonym", "BIC01")),
    ("centre BAD with the key of BIC01",
     lambda w: w.run("consent", "record", "H-9", "--centre", "BAD", "--key-file",
                     str(w.root / "BIC01.key"), "--state", "consented"), 2,
     ("BAD",)),
]  # fmt: skip


def _athena(content: bytes) -> Callable[[World], Result]:
    def run(w: World) -> Result:
        folder = w.root / "athena"
        folder.mkdir(exist_ok=True)
        (folder / "CONCEPT.csv").write_bytes(content)
        return w.run("vocab", "load-athena", str(folder))

    return run


def _file_arg(*args: str, name: str, data: bytes) -> Callable[[World], Result]:
    def run(w: World) -> Result:
        path = w.root / "bad" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return w.run(*[str(path) if a == "{}" else a for a in args])

    return run


OTHER_CASES: list[Case] = [
    ("vocab load-athena: a bad CONCEPT.csv",
     _athena(b"concept_id\tfoo\n1\tx\n"), 2, ("CONCEPT.csv", "foo")),
    ("vocab load-athena: CONCEPT.csv not UTF-8", _athena(b"\xff\xfe\x00x"), 2,
     ("CONCEPT.csv", "utf-8")),
    ("mapping import: not UTF-8",
     _file_arg("mapping", "import", "{}", name="rules.csv", data=b"centre\xff\n"), 2,
     ("rules.csv", "utf-8")),
    ("mapping import: unknown TG-263 name",
     _file_arg("mapping", "import", "{}", name="r2.csv",
               data=b"centre,pattern,kind,tg263_name\n,x,exact,Hearts\n"), 2,
     ("line 2",)),
    ("phantom: spec nested 3000 levels",
     _file_arg("phantom", "--spec", "{}", "/nonexistent/x", name="sp.json",
               data=b"[" * 3000 + b"]" * 3000), 2, ("sp.json",)),
    ("phantom: spec not UTF-8",
     _file_arg("phantom", "--spec", "{}", "/nonexistent/x", name="sp2.json",
               data=b'{"a": "\xff"}'), 2, ("sp2.json",)),
    ("ntcp fit: cohort not UTF-8",
     _file_arg("ntcp", "fit", "--cohort", "{}", "--json", "/nonexistent/m.json",
               name="c.csv", data=b"patient_id\xff\n"), 2, ("c.csv",)),
    ("ntcp predict: missing cohort",
     lambda w: w.run("ntcp", "predict", "--model", "quantec2010_rectum_grade2",
                     "--cohort", str(w.root / "none.csv"), "--out",
                     str(w.root / "o.csv")), 2, ("none.csv",)),
    ("prom score: not UTF-8",
     _file_arg("prom", "score", "{}", name="answers.csv", data=b"q1\xff\n"), 2,
     ("answers.csv",)),
]  # fmt: skip


def _dicom_folder(w: World, n: int, mutate: Callable[[Path], None]) -> Path:
    patient = f"DC-{n}"
    _ok("consent", "record", patient, *w.k, "--state", "consented",
        "--year-of-birth", "1950", "--sex", "M")  # fmt: skip
    folder = phantom_folder(w.root / "dicom" / str(n), patient, 800 + n)
    mutate(folder)
    return folder


def _no_roi_contours(folder: Path) -> None:
    set_attribute(folder / "RTSTRUCT.dcm", "ROIContourSequence", None)


def _truncate(folder: Path) -> None:
    data = (folder / "RTDOSE.dcm").read_bytes()
    (folder / "RTDOSE.dcm").write_bytes(data[: len(data) // 3])


def _random(folder: Path) -> None:
    (folder / "RTDOSE.dcm").write_bytes(bytes(range(256)) * 40)


DICOM_CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("DoseGridScaling = -1",
     lambda f: set_attribute(f / "RTDOSE.dcm", "DoseGridScaling", "-1"),
     "dose-unusable"),
    ("DoseGridScaling = 0",
     lambda f: set_attribute(f / "RTDOSE.dcm", "DoseGridScaling", "0"),
     "dose-unusable"),
    ("DoseGridScaling = 1e30",
     lambda f: set_attribute(f / "RTDOSE.dcm", "DoseGridScaling", "1e30"),
     "dose-implausible"),
    ("RTSTRUCT without ROIContourSequence", _no_roi_contours, "no-contours"),
    ("truncated RTDOSE", _truncate, "unreadable"),
    ("random bytes as RTDOSE", _random, "not-dicom"),
]  # fmt: skip


def test_every_command_refuses_bad_input_cleanly(world: World) -> None:
    """Each case: no traceback, a clear message, the exit code, nothing stored."""
    failures: list[str] = []
    for name, invoke, code, fragments in FHIR_CASES + COHORT_CASES + OTHER_CASES:
        before = row_counts(world.engine)
        result = invoke(world)
        try:
            _clean(result, code, *fragments)
            assert row_counts(world.engine) == before, "rows were stored"
        except AssertionError as exc:
            failures.append(f"{name}: {exc}\n{result.output[-600:]}")
    assert not failures, "\n".join(failures)


def test_bad_dicom_is_held_with_its_reason(world: World) -> None:
    """The DICOM rows of the table through ``rtcohort import`` and ``rtcohort dvh``."""
    for n, (_name, mutate, _reason) in enumerate(DICOM_CASES):
        _dicom_folder(world, n, mutate)
    pydicom_rt_files(world.root / "dicom" / "pydicom")
    set_attribute(world.root / "dicom" / "pydicom" / "rtdose.dcm",
                  "DoseGridScaling", "-1")  # fmt: skip
    before = row_counts(world.engine)
    result = world.run("import", str(world.root / "dicom"), *world.k, "--strict")
    _clean(result, 1, "datasets loaded 0,")
    for _name, _mutate, reason in DICOM_CASES:
        assert f"quarantined {reason}:" in result.output, (reason, result.output)
    assert row_counts(world.engine) == before
    held = json.loads(_ok("quarantine", "list", "--json"))
    by_code = {item["reason_code"]: item["reason"] for item in held}
    assert "DoseGridScaling" in by_code["dose-unusable"]
    assert "no ROIContourSequence" in by_code["no-contours"]
    assert "above the limit" in by_code["dose-implausible"]
    assert "truncated" in by_code["unreadable"]
    assert "no DICM prefix" in by_code["not-dicom"]
    for n, (name, _mutate, _reason) in enumerate(DICOM_CASES):
        out = world.run("dvh", str(world.root / "dicom" / str(n)),
                        "--csv", str(world.root / f"dvh{n}.csv"))  # fmt: skip
        assert "Traceback" not in out.output, (name, out.output)
        assert out.exit_code in (1, 2), (name, out.exit_code, out.output)
        assert out.output.strip(), name


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = deep_json(tmp_path / "deep.json")
    args = ["phantom", "--spec", str(path), str(tmp_path / "p")]
    plain = runner.invoke(app, args)
    _clean(plain, 2, "deep.json", "nested too deeply")
    assert plain.output.strip().count("\n") == 0
    debug = runner.invoke(app, ["--debug", *args])
    assert isinstance(debug.exception, RecursionError)
