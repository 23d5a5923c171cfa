"""Dose-metric export from stored DVHs reproduces `rtcohort dvh`; structure report."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, false, true
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from etl.deid.folder import deidentify_folder
from etl.deid.pseudonymise import pseudonym
from etl.ingest.run import run_import
from etl.store.export import (
    EXPORT_COLUMNS,
    dose_metric_table,
    structure_matrix,
    write_csv,
)
from rtcohort.cli import app
from tests.etl.ingest_corpus import small_spec, write_patient
from tests.etl.ingest_db import KEY, Db, make_db

METRICS = [
    "D95%[Gy]",
    "D2%[Gy]",
    "D0.03cc[Gy]",
    "V20Gy[%]",
    "V17.5Gy[cc]",
    "D33.3%[Gy]",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def deid_patient(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exp")
    write_patient(root / "raw", "EXP-1", 301)
    (root / "raw" / "truth.json").unlink()
    deidentify_folder(root / "raw", root / "deid", KEY)
    return root / "deid"


class _Access:
    def __init__(self, allow: bool) -> None:
        self.username = "tester"
        self.allow = allow
        self.records: list[tuple[str, str, set[int]]] = []

    def person_filter(self, person_id: ColumnElement[int]) -> ColumnElement[bool]:
        return true() if self.allow else false()

    def record(
        self, session: Session, action: str, detail: str, person_ids: Iterable[int]
    ) -> None:
        self.records.append((action, detail, set(person_ids)))


def _dvh_cli(folder: Path, *extra: str) -> dict[str, dict[str, str]]:
    args = ["dvh", str(folder)]
    for m in METRICS:
        args += ["--metric", m]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    lines = [
        ln
        for ln in result.stdout.splitlines()
        if ln and not ln.startswith(("warning", "#"))  # the 18.5 comment header
    ]
    return {r["roi_name"]: r for r in csv.DictReader(io.StringIO("\n".join(lines)))}


def test_export_reproduces_rtcohort_dvh(db: Db, deid_patient: Path) -> None:
    expected = _dvh_cli(deid_patient)
    summary = run_import(db.factory, [deid_patient], db.options(dvh_samples=None))
    assert summary.loaded == 1
    access = _Access(allow=True)
    with db.factory.begin() as s:
        table = dose_metric_table(s, access=access, metrics=METRICS)
    assert table.header == [*EXPORT_COLUMNS, *METRICS]
    rows = [dict(zip(table.header, r, strict=True)) for r in table.rows]
    mine = {
        r["roi_name"]: r
        for r in rows
        if r["person_source_value"] == pseudonym(KEY, "EXP-1")
    }
    assert set(mine) == set(expected)
    for roi, want in expected.items():
        got = mine[roi]
        assert got["dose_sop_instance_uid"] == want["dose_sop_instance_uid"]
        assert float(got["volume_cc"]) == pytest.approx(
            float(want["volume_cc"]), rel=1e-12
        )
        for m in METRICS:
            if want[m] == "":
                assert got[m] == ""
            else:
                assert float(got[m]) == pytest.approx(
                    float(want[m]), rel=1e-9, abs=1e-9
                ), (roi, m)
    assert {r["tg263_name"] for r in mine.values()} == {
        "Body",
        "Heart",
        "Lung_L",
        "PTV",
    }
    assert access.records and access.records[-1][0] == "export dose-metrics"
    assert (
        pseudonym(KEY, "EXP-1") not in access.records[-1][1]
    )  # no identifier in detail


def test_eqd2_export_reproduces_rtcohort_dvh_with_alpha_beta(
    db: Db, deid_patient: Path
) -> None:
    run_import(db.factory, [deid_patient], db.options(dvh_samples=None))
    expected = _dvh_cli(deid_patient, "--alpha-beta", "3", "--fractions", "30")
    with db.factory.begin() as s:
        table = dose_metric_table(
            s,
            access=_Access(allow=True),
            metrics=["Mean[Gy]", "Max[Gy]", *METRICS],
            alpha_beta_gy=3.0,
        )
    rows = [dict(zip(table.header, r, strict=True)) for r in table.rows]
    mine = {
        r["roi_name"]: r
        for r in rows
        if r["person_source_value"] == pseudonym(KEY, "EXP-1")
    }
    for roi, want in expected.items():
        assert float(mine[roi]["Mean[Gy]"]) == pytest.approx(
            float(want["mean_gy"]), rel=1e-9
        )
        assert float(mine[roi]["Max[Gy]"]) == pytest.approx(
            float(want["max_gy"]), rel=1e-9
        )
        for m in METRICS:
            if want[m]:
                assert float(mine[roi][m]) == pytest.approx(
                    float(want[m]), rel=1e-9, abs=1e-9
                )


def test_filters_and_permission(db: Db, deid_patient: Path) -> None:
    run_import(db.factory, [deid_patient], db.options())
    denied = _Access(allow=False)
    with db.factory.begin() as s:
        assert dose_metric_table(s, access=denied).rows == []
        heart = dose_metric_table(
            s, access=_Access(allow=True), structures=["Heart"], metrics=["Mean[Gy]"]
        )
        other = dose_metric_table(s, access=_Access(allow=True), centres=["NOPE"])
    assert denied.records[0][2] == set()
    assert {r[4] for r in heart.rows} == {"Heart"}
    assert other.rows == []


def test_structure_completeness_matrix(db: Db, tmp_path: Path) -> None:
    spec = small_spec()
    spec["rois"] = [*spec["rois"], {"name": "Heart", "shape": "sphere", "size_mm": 20,
                                     "offset_mm": [20, 0, 0], "interpreted_type": "ORGAN"}]  # fmt: skip
    write_patient(tmp_path / "dup", "EXP-DUP", 302, spec)
    run_import(db.factory, [tmp_path], db.options())
    with db.factory.begin() as s:
        table = structure_matrix(
            s, access=_Access(allow=True), required=["Heart", "Lung_L", "Lung_R"]
        )
    assert table.header == ["person_source_value", "Heart", "Lung_L", "Lung_R"]
    rows = {r[0]: r[1:] for r in table.rows}
    assert rows[pseudonym(KEY, "EXP-DUP")] == ["2+", "1", "0"]
    text = write_csv(None, table)
    assert (
        text is not None
        and text.splitlines()[0] == "person_source_value,Heart,Lung_L,Lung_R"
    )
