"""Seeded fuzzing of the import paths (issue 13): no traceback, no memory blow-up.

Real RT objects (a small phantom course and pydicom's rtdose.dcm/rtstruct.dcm made
into one) and FHIR resources from our writers (QuestionnaireResponse, AdverseEvent)
are mutated with ``numpy.random.default_rng(seed)``: bit flips, truncation, tag
values changed (to the values that broke imports before: negative, zero, huge and
not-a-number scalings and sizes, non-UIDs, odd contour data), elements deleted.
Each mutant goes through ``rtcohort import``, ``prom import`` or ``toxicity import``
in a child process with its address space capped at 1.5 GB, for at most
``DEADLINE_S`` seconds per backend. Every case must end as a result or a clear
refusal or hold: no traceback, no internal error, no out-of-memory.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import DataElement
from typer.testing import CliRunner

from rtcohort.cli import app
from tests.bad_inputs import (
    phantom_folder,
    prom_resource,
    pydicom_course,
    toxicity_resource,
)

HERE = Path(__file__).resolve().parents[1]
SEED = 20261205
MEMORY_CAP_BYTES = 1536 * 2**20
DEADLINE_S = 40.0
N_DICOM, N_FHIR = 48, 60
Rng = np.random.Generator

#: Attributes whose values broke or could break the readers; changed more often.
HOT = (
    "DoseGridScaling", "GridFrameOffsetVector", "Rows", "Columns", "NumberOfFrames",
    "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient",
    "BitsAllocated", "BitsStored", "PixelRepresentation", "DoseUnits",
    "DoseSummationType", "FrameOfReferenceUID", "SOPInstanceUID", "StudyDate",
    "ROIContourSequence", "StructureSetROISequence", "PatientID",
)  # fmt: skip
_NUMBERS = ("-1", "0", "1e30", "nan", "inf", "-0", "65535", "2147483647", "3.5")
_UIDS = ("1.2..3", "../../x", "", "9" * 80)


def _bad_value(rng: Rng, element: DataElement) -> Any:
    vr = element.VR
    if vr in ("DS", "IS"):
        count = max(1, element.VM)
        return [str(rng.choice(_NUMBERS)) for _ in range(count)]
    if vr in ("US", "UL", "SS", "SL"):
        return int(rng.choice([0, 1, 255, 65535])) if vr[0] == "U" else -1
    if vr in ("FL", "FD"):
        return float(rng.choice([-1.0, 0.0, 1e30, float("nan")]))
    if vr == "UI":
        return str(rng.choice(_UIDS))
    if vr == "SQ":
        return []
    if vr in ("OB", "OW"):
        data = bytes(element.value or b"")
        return data[: int(rng.integers(0, len(data) + 1))]
    return "".join(chr(int(c)) for c in rng.integers(32, 127, int(rng.integers(0, 70))))


def _contour_data(rng: Rng, ds: pydicom.Dataset) -> bool:
    """Break the ContourData of one contour: odd counts, NaN, huge values."""
    items = [c for rc in ds.get("ROIContourSequence", [])
             for c in rc.get("ContourSequence", [])]  # fmt: skip
    if not items:
        return False
    contour = items[int(rng.integers(len(items)))]
    points = list(contour.ContourData)
    choice = int(rng.integers(4))
    if choice == 0:
        contour.ContourData = points[:-1] or ["nan"]
    elif choice == 1:
        contour.ContourData = ["nan"] * len(points)
    elif choice == 2:
        contour.ContourData = ["1e30"] * len(points)
    else:
        contour.NumberOfContourPoints = 10**6
    return True


def _mutate_dicom(rng: Rng, path: Path) -> str:
    """Apply one random mutation to the DICOM file ``path``; return its name."""
    data = path.read_bytes()
    kind = int(rng.integers(5))
    if kind == 0:  # bit flips
        flipped = bytearray(data)
        for pos in rng.integers(0, len(data), int(rng.integers(1, 9))):
            flipped[pos] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(flipped))
        return "bit flips"
    if kind == 1:
        path.write_bytes(data[: int(rng.integers(0, len(data)))])
        return "truncation"
    ds = pydicom.dcmread(path, force=True)
    if kind == 4 and _contour_data(rng, ds):
        name = "contour data"
    else:
        hot = [k for k in HOT if k in ds]
        keywords = hot if hot and rng.random() < 0.6 else [e.keyword for e in ds]
        keyword = str(rng.choice([k for k in keywords if k]))
        if kind == 2:
            name = f"{keyword} changed"
            try:
                ds[keyword].value = _bad_value(rng, ds[keyword])
            except (ValueError, TypeError, OverflowError):
                del ds[keyword]
                name = f"{keyword} deleted"
        else:
            del ds[keyword]
            name = f"{keyword} deleted"
    try:
        ds.save_as(path, enforce_file_format=False)
    except (ValueError, TypeError, OverflowError, AttributeError):
        path.write_bytes(data[: len(data) // 2])
        name += " (unwritable: truncated)"
    return name


def _json_mutation(rng: Rng, node: Any) -> None:
    """Change, delete or deepen one random member of a JSON tree in place."""
    while True:
        members = (
            list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        )
        if not members:
            return
        key, value = members[int(rng.integers(len(members)))]
        if isinstance(value, dict | list) and value and rng.random() < 0.7:
            node = value
            continue
        choice = int(rng.integers(5))
        if choice == 0 and isinstance(node, dict):
            del node[key]
        else:
            node[key] = [None, -1, 1e308, "x" * 300, [[[[]]]], {"a": {}}, "3000-01-01"][
                int(rng.integers(7))
            ]
        return


def _fhir_bytes(rng: Rng, resource: dict[str, Any]) -> bytes:
    data = copy.deepcopy(resource)
    for _ in range(int(rng.integers(1, 4))):
        _json_mutation(rng, data)
    text = json.dumps(data).encode()
    kind = int(rng.integers(4))
    if kind == 0:
        flipped = bytearray(text)
        for pos in rng.integers(0, len(text), int(rng.integers(1, 5))):
            flipped[pos] ^= 1 << int(rng.integers(8))
        return bytes(flipped)
    if kind == 1:
        return text[: int(rng.integers(0, len(text)))]
    return text


def _dicom_cases(rng: Rng, root: Path, bases: dict[str, Path]) -> list[list[str]]:
    cases = []
    for n in range(N_DICOM):
        base_name = str(rng.choice(sorted(bases)))
        folder = root / "dicom" / f"{n:02d}"
        shutil.copytree(bases[base_name], folder)
        files = sorted(p for p in folder.glob("*.dcm") if not p.name.startswith("CT"))
        files += sorted(folder.glob("CT*.dcm"))[:1]
        target = files[int(rng.integers(len(files)))]
        _mutate_dicom(rng, target)
        cases.append(["import", str(folder)])
    return cases


def _fhir_cases(rng: Rng, root: Path) -> list[list[str]]:
    resources: dict[str, Callable[[], dict[str, Any]]] = {
        "prom": lambda: prom_resource("FZ-1", rid=f"r{rng.integers(3)}"),
        "toxicity": lambda: toxicity_resource("FZ-1"),
    }
    cases = []
    for n in range(N_FHIR):
        command = str(rng.choice(sorted(resources)))
        path = root / "fhir" / f"{n:02d}-{command}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_fhir_bytes(rng, resources[command]()))
        cases.append([command, str(path)])
    return cases


@pytest.fixture
def cli_env(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = {
        "RTCOHORT_DATABASE_URL": fresh_url,
        "RTCOHORT_DATA_DIR": str(tmp_path / "data"),
        "RTCOHORT_ADMIN_PASSWORD": "correct horse battery",
        "FUZZ_CENTRE": "FUZ01",
        "FUZZ_KEY": str(tmp_path / "k.key"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    k = ["--centre", "FUZ01", "--key-file", env["FUZZ_KEY"]]
    for args in (
        ["db", "upgrade"],
        ["centre", "add", "FUZ01"],
        ["keys", "new", "--centre", "FUZ01", "--out", env["FUZZ_KEY"]],
        *(["consent", "record", p, *k, "--state", "consented", "--date",
           "2024-01-02", "--year-of-birth", "1950", "--sex", "F"]
          for p in ("FZ-1", "FZ-PYD")),
    ):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return env


def test_fuzzed_imports_end_cleanly(cli_env: dict[str, str], tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    bases = {
        "phantom": phantom_folder(tmp_path / "base" / "phantom", "FZ-1", 900),
        "pydicom": pydicom_course(tmp_path / "base" / "pydicom", "FZ-PYD"),
    }
    cases = _dicom_cases(rng, tmp_path, bases) + _fhir_cases(rng, tmp_path)
    order = rng.permutation(len(cases))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps([cases[i] for i in order]))
    results = tmp_path / "results.json"
    env = {**os.environ, **cli_env, "PYTHONPATH": str(HERE),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_child", str(manifest), str(results),
         str(MEMORY_CAP_BYTES), str(DEADLINE_S)],
        capture_output=True, text=True, env=env, timeout=300, check=False, cwd=HERE,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(results.read_text())
    ran = out["cases"]
    kinds = {c[0] for c in cases if c[1] in {r["case"] for r in ran}}
    assert len(ran) >= 20 and kinds == {"import", "prom", "toxicity"}, len(ran)
    bad = []
    for r in ran:
        text = r["output"]
        clean = (
            r["exception"] is None
            and "Traceback" not in text
            and "internal error" not in text
            and "out of memory" not in text
            and r["code"] in (0, 1, 2)
            and (r["code"] == 0 or "error:" in text or "quarantined" in text)
        )
        if not clean:
            bad.append(f"{r['case']}: exit {r['code']} {r['exception']}\n{text}\n"
                       f"{r['traceback'] or ''}")  # fmt: skip
    assert not bad, "\n".join(bad)
    print(f"fuzz: {len(ran)} cases, peak RSS {out['peak_bytes'] / 2**20:.0f} MB")
    assert out["peak_bytes"] < MEMORY_CAP_BYTES
