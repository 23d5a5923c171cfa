"""Implausible dose and empty structure sets are held, never loaded (issue 13, part 1).

Real RT objects (the phantom writer's and pydicom's bundled rtdose.dcm/rtstruct.dcm)
are mutated and imported through the real import path on both backends; each must
end held with its reason, with no row loaded, no traceback and bounded memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from sqlalchemy import func, select
from typer.testing import CliRunner

from etl.deid.pseudonymise import pseudonym
from etl.dicom.index import DoseRole
from etl.dicom.rtdose import MAX_DOSE_VOXELS, read_rtdose
from etl.dicom.rtstruct import Roi, StructureSet
from etl.dose._columns import MAX_DVH_BINS
from etl.dose.dvh import DVH, compute_dvh
from etl.dose.grid import DoseGrid
from etl.dose.radiobiology import dvh_to_eqd2
from etl.errors import DoseGridError
from etl.ingest.plausibility import (
    DoseLimits,
    check_contours,
    check_dose_range,
    plausibility_findings,
)
from etl.ingest.run import run_import
from omop.cdm import Episode, Measurement, Person
from omop.ingest_tables import Dvh, IngestDataset, QuarantineItem
from rtcohort.cli import app
from tests.etl.ingest_corpus import edit, write_patient
from tests.etl.ingest_db import KEY, Db, make_db

HERE = Path(__file__).resolve().parents[2]
LIMITS = DoseLimits()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("plausible"))


# -- mutations of real objects ----------------------------------------------------


def _phantom(folder: Path, patient: str, seed: int) -> Path:
    write_patient(folder, patient, seed)
    (folder / "truth.json").unlink()
    return folder


def _dose_max_gy(path: Path) -> float:
    """Maximum of the stored dose (pixels x scaling), read with pydicom alone."""
    ds = pydicom.dcmread(path)
    return float(ds.pixel_array.max()) * float(ds.DoseGridScaling)


def _set_prescription(folder: Path, rx_gy: float) -> None:
    ds = pydicom.dcmread(folder / "RTPLAN.dcm")
    for ref in ds.DoseReferenceSequence:
        ref.TargetPrescriptionDose = round(rx_gy, 4)
    ds.save_as(folder / "RTPLAN.dcm", enforce_file_format=True)


def _scaling(value: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        edit(folder / "RTDOSE.dcm", DoseGridScaling=value)

    return mutate


def _times_prescription(factor: float) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        _set_prescription(folder, _dose_max_gy(folder / "RTDOSE.dcm") / factor)

    return mutate


def _no_roi_contour_sequence(folder: Path) -> None:
    ds = pydicom.dcmread(folder / "RTSTRUCT.dcm")
    del ds.ROIContourSequence
    ds.save_as(folder / "RTSTRUCT.dcm", enforce_file_format=True)


def _empty_contours(folder: Path) -> None:
    ds = pydicom.dcmread(folder / "RTSTRUCT.dcm")
    for rc in ds.ROIContourSequence:
        for contour in rc.ContourSequence:
            contour.ContourData = []
            contour.NumberOfContourPoints = 0
    ds.save_as(folder / "RTSTRUCT.dcm", enforce_file_format=True)


CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "scaling -1": (_scaling("-1"), "dose-unusable", "DoseGridScaling"),
    "scaling 0": (_scaling("0"), "dose-unusable", "DoseGridScaling"),
    "scaling 1e30": (_scaling("1e30"), "dose-implausible", "above the limit"),
    "scaling NaN": (_scaling("nan"), "dose-unusable", "DoseGridScaling"),
    "max 10x prescription": (
        _times_prescription(10.0), "dose-implausible", "x the prescription"
    ),
    "max 1/10 of prescription": (
        _times_prescription(0.1), "dose-implausible", "units or scaling wrong"
    ),
    "no ROIContourSequence": (_no_roi_contour_sequence, "no-contours", "structure"),
    "all contours empty": (_empty_contours, "no-contours", "structure"),
}  # fmt: skip


def _counts(db: Db) -> dict[str, int]:
    with db.factory() as s:
        return {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Person, Episode, Measurement, Dvh, IngestDataset)
        }


def _held(db: Db, patient: str) -> list[QuarantineItem]:
    with db.factory() as s:
        return list(
            s.scalars(
                select(QuarantineItem).where(
                    QuarantineItem.person_source_value == pseudonym(KEY, patient),
                    QuarantineItem.status == "held",
                )
            )
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_mutated_phantom_is_held_with_its_reason(
    db: Db, tmp_path: Path, case: str
) -> None:
    mutate, reason, detail = CASES[case]
    patient = "PL-" + case.replace(" ", "-")[:20]
    folder = _phantom(tmp_path / "in", patient, sorted(CASES).index(case) + 500)
    n_files = len(list(folder.glob("*.dcm")))
    mutate(folder)
    before = _counts(db)
    summary = run_import(db.factory, [folder], db.options())
    assert summary.loaded == 0 and summary.datasets_held == 1
    assert dict(summary.quarantined) == {reason: n_files}
    assert _counts(db) == before  # nothing loaded: no person, course, metric, DVH
    held = _held(db, patient)
    assert len(held) == n_files
    assert {h.reason_code for h in held} == {reason}
    assert all(detail in h.reason for h in held), held[0].reason


def test_dose_high_is_a_warning_and_loads(db: Db, tmp_path: Path) -> None:
    folder = _phantom(tmp_path / "in", "PL-HIGH", 520)
    _times_prescription(1.6)(folder)
    summary = run_import(db.factory, [folder], db.options())
    assert summary.loaded == 1
    assert summary.warnings["dose-high"] == 1
    with db.factory() as s:
        stored = s.scalar(
            select(IngestDataset.warnings)
            .join(Person, Person.person_id == IngestDataset.person_id)
            .where(Person.person_source_value == pseudonym(KEY, "PL-HIGH"))
        )
    codes = [w["code"] for w in json.loads(stored or "[]")]
    assert codes.count("dose-high") == 1


def test_unmutated_phantom_loads_without_dose_findings(db: Db, tmp_path: Path) -> None:
    folder = _phantom(tmp_path / "in", "PL-OK", 521)
    summary = run_import(db.factory, [folder], db.options())
    assert summary.loaded == 1 and not summary.quarantined
    assert "dose-high" not in summary.warnings


# -- pydicom's bundled RT objects -----------------------------------------------


def _pydicom_pair(folder: Path, scaling: str, *, contours: bool = True) -> str:
    """pydicom's rtdose.dcm/rtstruct.dcm made into one course dose and its structures.

    The dose becomes an absolute PLAN dose (it is a RELATIVE beam dose) in the frame
    of reference of the structure set; the plan reference is dropped.
    """
    folder.mkdir(parents=True)
    ss = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    dose = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    patient = f"PYD-{scaling}-{int(contours)}"
    dose.DoseUnits, dose.DoseSummationType = "GY", "PLAN"
    dose.PatientID = ss.PatientID = patient
    dose.FrameOfReferenceUID = ss.ReferencedFrameOfReferenceSequence[
        0
    ].FrameOfReferenceUID
    del dose.ReferencedRTPlanSequence
    dose.DoseGridScaling = scaling
    ss.StudyDate = dose.StudyDate
    if not contours:
        del ss.ROIContourSequence
    dose.save_as(folder / "dose.dcm")
    ss.save_as(folder / "rtstruct.dcm")
    return patient


@pytest.mark.parametrize(
    ("scaling", "contours", "expect"),
    [
        ("1e-6", True, "loaded"),
        ("-1", True, "dose-unusable"),
        ("0", True, "dose-unusable"),
        ("1e30", True, "dose-implausible"),
        ("1e-6", False, "no-contours"),
    ],
)
def test_pydicom_rt_objects(
    db: Db, tmp_path: Path, scaling: str, contours: bool, expect: str
) -> None:
    patient = _pydicom_pair(tmp_path / "in", scaling, contours=contours)
    before = _counts(db)
    summary = run_import(db.factory, [tmp_path / "in"], db.options())
    if expect == "loaded":
        # max 1,254,000 x 1e-6 = 1.254 Gy: no prescription known, below every limit
        assert summary.loaded == 1 and not summary.quarantined
        assert "dose-high" not in summary.warnings
        return
    assert summary.loaded == 0
    assert dict(summary.quarantined) == {expect: 2}
    assert _counts(db) == before
    assert {h.reason_code for h in _held(db, patient)} == {expect}


# -- the command ---------------------------------------------------------------


@pytest.fixture
def cli_env(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RTCOHORT_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTCOHORT_ADMIN_PASSWORD", "correct horse battery")
    monkeypatch.delenv("RTCOHORT_USER", raising=False)
    from rtcohort.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    for args in (["db", "upgrade"], ["centre", "add", "CLI01"],
                 ["keys", "new", "--centre", "CLI01", "--out", str(tmp_path / "k.key")]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return tmp_path


def test_cli_import_holds_every_case_without_traceback(cli_env: Path) -> None:
    runner = CliRunner()
    key = str(cli_env / "k.key")
    expected: dict[str, int] = {}
    for n, case in enumerate(sorted(CASES)):
        mutate, reason, _ = CASES[case]
        patient = f"CLI-PL-{n}"
        folder = _phantom(cli_env / "in" / str(n), patient, 600 + n)
        mutate(folder)
        expected[reason] = expected.get(reason, 0) + len(list(folder.glob("*.dcm")))
        result = runner.invoke(app, ["consent", "record", patient, "--centre", "CLI01",
            "--key-file", key, "--state", "consented", "--year-of-birth", "1950",
            "--sex", "F"])  # fmt: skip
        assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["import", str(cli_env / "in"), "--centre", "CLI01", "--key-file", key]
    )
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "datasets loaded 0," in result.output
    assert f"held {len(CASES)};" in result.output
    for reason, n in expected.items():
        assert f"quarantined {reason}: {n}" in result.output
    listed = runner.invoke(app, ["quarantine", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    codes = [item["reason_code"] for item in json.loads(listed.stdout)]
    assert {c: codes.count(c) for c in set(codes)} == expected


# -- bounded memory ------------------------------------------------------------

#: No import may take more (issue 13); measured peaks are in docs/ingest.md.
MEMORY_CAP_BYTES = 1536 * 2**20

_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    cap = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from etl.ingest.run import ImportOptions, run_import
    from omop.engine import make_engine, session_factory
    from omop.filestore import FileStore
    from tests.etl.ingest_db import KEY
    root = Path(sys.argv[2])
    opts = ImportOptions(centre="TST01", key=KEY, store=FileStore(root / "files"),
                         quarantine_dir=root / "quarantine")
    summary = run_import(session_factory(make_engine(sys.argv[1])), [root / "in"], opts)
    from tests.memory import peak_rss
    print(json.dumps({"summary": summary.as_dict(), "peak_bytes": peak_rss()}))
    """
)


def test_import_memory_is_bounded(db: Db, tmp_path: Path) -> None:
    """The 15-structure phantom and its copies scaled by -1 and 1e30, under a cap.

    Before the checks, the scaling of -1 took all the memory of the machine.
    """
    from etl.phantom.write import write_phantom

    spec = json.loads((HERE / "etl" / "data" / "phantom_multi15.json").read_text())
    for n, scaling in enumerate(("", "-1", "1e30")):
        folder = tmp_path / "in" / str(n)
        write_phantom(folder, spec, patient_id=f"MEM-{n}-{db.engine.dialect.name}",
                      seed=700 + n)  # fmt: skip
        (folder / "truth.json").unlink()
        if scaling:
            edit(folder / "RTDOSE.dcm", DoseGridScaling=scaling)
    url = db.engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, url, str(tmp_path),
         str(MEMORY_CAP_BYTES)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    summary = out["summary"]
    assert summary["datasets_loaded"] == 1 and summary["datasets_held"] == 2
    assert set(summary["quarantined"]) == {"dose-unusable", "dose-implausible"}
    print(f"import peak RSS {out['peak_bytes'] / 2**20:.0f} MB")
    assert out["peak_bytes"] < MEMORY_CAP_BYTES


# -- the checks themselves (numbers derived by hand) ----------------------------


def test_dose_range_limits() -> None:
    assert check_dose_range(60.0 * 5.0, 60.0) is not None  # 300 Gy: absolute limit
    assert check_dose_range(10.1 * 5.0, 10.0).reason.value == "dose-implausible"
    assert check_dose_range(10.0 * 5.0, 10.0).reason.value == "dose-high"
    assert check_dose_range(60.0 * 1.5, 60.0) is None
    assert check_dose_range(60.0 * 1.51, 60.0).reason.value == "dose-high"
    assert check_dose_range(11.9, 60.0).reason.value == "dose-implausible"  # < 0.2x
    assert check_dose_range(11.9, 60.0, whole_plan=False) is None
    assert check_dose_range(200.1, None).reason.value == "dose-implausible"
    assert check_dose_range(100.1, None).reason.value == "dose-high"
    assert check_dose_range(99.0, None) is None
    assert check_dose_range(0.0, 60.0).reason.value == "dose-implausible"
    assert check_dose_range(float("nan"), None).reason.value == "dose-implausible"


def test_contour_counts() -> None:
    assert check_contours([]).reason.value == "no-contours"
    assert check_contours([0, 0, 0]).reason.value == "no-contours"
    assert check_contours([0, 1]) is None


def _grid(value: float, summation: str = "PLAN") -> DoseGrid:
    e = np.eye(3)
    return DoseGrid(np.full((4, 4, 4), value), np.zeros(3), e[0], e[1], e[2],
                    (1.0, 1.0, 1.0), summation_type=summation)  # fmt: skip


def _square_ss(points: int = 4) -> StructureSet:
    sq = np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]])[:points]
    cs = tuple(np.column_stack([sq, np.full(len(sq), z)]) for z in (1.0, 2.0))
    return StructureSet("1.2.3", "", (Roi(1, "Box", "CLOSED_PLANAR", cs, "ORGAN"),))


def test_fraction_dose_is_checked_per_fraction() -> None:
    # 2 Gy fractions x 30: a FRACTION dose of 2.2 Gy is fine, of 12 Gy (6x) is not
    ok = plausibility_findings(_grid(2.2, "FRACTION"), _square_ss(),
        role=DoseRole.PLAN, prescription_gy=60.0, n_fractions=30)  # fmt: skip
    assert ok == []
    bad = plausibility_findings(_grid(12.0, "FRACTION"), _square_ss(),
        role=DoseRole.PLAN, prescription_gy=60.0, n_fractions=30)  # fmt: skip
    assert [f.reason.value for f in bad] == ["dose-implausible"]


def test_contours_of_two_points_are_no_contours() -> None:
    found = plausibility_findings(_grid(60.0), _square_ss(points=2),
        role=DoseRole.PLAN, prescription_gy=60.0, n_fractions=30)  # fmt: skip
    assert [f.reason.value for f in found] == ["no-contours"]


def test_beam_dose_is_not_range_checked() -> None:
    found = plausibility_findings(_grid(900.0, "BEAM"), _square_ss(),
        role=DoseRole.BEAM, prescription_gy=60.0, n_fractions=30)  # fmt: skip
    assert found == []


def test_dvh_bins_are_bounded() -> None:
    contours = list(_square_ss().rois[0].contours)
    bound_gy = MAX_DVH_BINS * 0.01
    with pytest.raises(DoseGridError, match="bins"):
        compute_dvh(contours, _grid(bound_gy * 1.01))
    with pytest.raises(DoseGridError, match="bins"):
        compute_dvh(contours, _grid(float("nan")))
    dvh = compute_dvh(contours, _grid(bound_gy * 0.99))
    assert len(dvh.differential_cc) <= MAX_DVH_BINS
    # EQD2 of 150 Gy in one fraction (a/b 3): 150 * 153 / 5 = 4590 Gy, 459,000 bins
    one = DVH(1.0, 0.0, 150.0, 150.0, 150.0, 0.01, np.r_[np.zeros(15000), 1.0])
    assert dvh_to_eqd2(one, 1, 3.0).max_gy == pytest.approx(4590.0)
    huge = DVH(1.0, 0.0, 1e4, 1e4, 1e4, 0.01, np.r_[np.zeros(10**6), 1.0])
    with pytest.raises(DoseGridError, match="bins"):
        dvh_to_eqd2(huge, 1, 3.0)  # 2e7 Gy EQD2


def test_dose_grid_size_is_bounded_before_decoding() -> None:
    ds = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    ds.Rows = ds.Columns = 2000
    ds.NumberOfFrames = MAX_DOSE_VOXELS // (2000 * 2000) + 1
    with pytest.raises(DoseGridError, match="voxels"):
        read_rtdose(ds, relative_reference_gy=1.0)
