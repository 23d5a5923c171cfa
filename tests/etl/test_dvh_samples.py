"""The sampled curves ``dvh_sampled`` kept by the DVH writers (both backends).

Phantom patients go through the whole import path (:func:`etl.ingest.run.run_import`
-> :func:`etl.store.load.load_dataset`); every state of the summary is compared with
the curves computed independently from the stored DVH rows, one at a time, as the
band did before any vectorisation: :meth:`DVH.cumulative` (after
:func:`dvh_to_eqd2` with the prescription's fractions) read every 1 Gy by
``numpy.interp``. A re-load with other fractions replaces the rows, erasure removes
them, and the migration's back-fill (0014) gives the rows the writers keep.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pydicom
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cohort.erasure import erase_person, person_tables
from etl.deid.pseudonymise import pseudonym
from etl.dose.radiobiology import dvh_to_eqd2
from etl.ingest.run import run_import
from etl.store.dvh_rows import dvh_from_row
from etl.store.metric_reads import prescriptions
from omop.cdm import Person
from omop.ingest_tables import Dvh, IngestDataset
from omop.summary_tables import DvhSampled
from tests.etl.ingest_corpus import write_patient
from tests.etl.ingest_db import KEY, Db, make_db

MIGRATION = Path(__file__).parents[2] / "omop/migrations/versions/0014_dvh_sampled.py"
Curves = dict[tuple[int, str], tuple[int | None, np.ndarray]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("samples"))


def _person(s: Session, patient_id: str) -> int:
    pid = s.scalar(
        select(Person.person_id).where(
            Person.person_source_value == pseudonym(KEY, patient_id)
        )
    )
    assert pid is not None
    return int(pid)


def _stored(s: Session, pid: int) -> Curves:
    rows = s.execute(select(DvhSampled).where(DvhSampled.person_id == pid)).scalars()
    out: Curves = {}
    for r in rows:
        assert r.step_gy == 1.0 and r.n_samples * 8 == len(r.samples)
        out[(r.dvh_id, r.representation)] = (
            r.fractions,
            np.frombuffer(r.samples, dtype="<f8"),
        )
    return out


def _one_curve(dose: np.ndarray, volume: np.ndarray) -> np.ndarray:
    if volume.size == 0 or volume[0] <= 0:
        return np.zeros(0)
    grid = np.arange(0.0, float(dose[-1]) + 1.0, 1.0)
    return np.interp(grid, dose, 100.0 * volume / volume[0], right=0.0)


def _expected(s: Session, pid: int) -> Curves:
    """Each stored DVH's curve computed on its own (physical and EQD2 3 Gy)."""
    rows = s.execute(
        select(Dvh, IngestDataset.episode_id)
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .where(Dvh.person_id == pid)
    ).all()
    plan = prescriptions(s, [e for _, e in rows if e is not None])
    out: Curves = {}
    for row, episode in rows:
        dvh = dvh_from_row(row)
        out[(row.dvh_id, "physical")] = (None, _one_curve(*dvh.cumulative()))
        n = plan.get(episode or -1, (None, None))[1]
        if n:
            eqd2 = dvh_to_eqd2(dvh, n, 3.0)
            out[(row.dvh_id, "eqd2_ab3")] = (n, _one_curve(*eqd2.cumulative()))
    return out


def _assert_equal(got: Curves, want: Curves) -> None:
    assert got.keys() == want.keys()
    for key, (n, values) in want.items():
        assert got[key][0] == n
        assert got[key][1].shape == values.shape, key
        np.testing.assert_allclose(got[key][1], values, rtol=0, atol=1e-9)


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0014", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _backfilled(s: Session, pid: int) -> Curves:
    """The rows the migration's back-fill computes from the stored DVHs."""
    migration, after, out = _migration(), 0, {}
    while batch := s.execute(migration._batch_query(after)).all():
        for r in migration._rows(batch):
            if r["person_id"] == pid:
                out[(r["dvh_id"], r["representation"])] = (
                    r["fractions"],
                    np.frombuffer(r["samples"], dtype="<f8"),
                )
        after = int(batch[-1].dvh_id)
    return out


def test_load_writes_the_sampled_curves(db: Db, tmp_path: Path) -> None:
    write_patient(tmp_path, "SM-1", 301)
    assert run_import(db.factory, [tmp_path], db.options()).loaded == 1
    with db.factory() as s:
        pid = _person(s, "SM-1")
        got, want = _stored(s, pid), _expected(s, pid)
        _assert_equal(got, want)
        structures = s.scalar(select(func.count()).where(Dvh.person_id == pid))
        assert len(got) == 2 * int(structures or 0) > 0  # physical and EQD2 each
        assert {n for n, _ in got.values()} == {None, 30}
        assert all(v[0] == pytest.approx(100.0) for _, v in got.values() if v.size)
        _assert_equal(_backfilled(s, pid), got)


def test_reload_replaces_the_sampled_curves(db: Db, tmp_path: Path) -> None:
    write_patient(tmp_path / "p", "SM-2", 302)
    run_import(db.factory, [tmp_path / "p"], db.options())
    with db.factory() as s:
        pid = _person(s, "SM-2")
        before = _stored(s, pid)
    ds = pydicom.dcmread(tmp_path / "p" / "RTPLAN.dcm")
    ds.FractionGroupSequence[0].NumberOfFractionsPlanned = 20
    ds.save_as(tmp_path / "changed.dcm", enforce_file_format=True)
    assert run_import(db.factory, [tmp_path / "changed.dcm"], db.options()).loaded == 1
    with db.factory() as s:
        got = _stored(s, pid)
        _assert_equal(got, _expected(s, pid))
        assert len(got) == len(before)  # the old DVH rows' samples went with them
        assert {n for n, _ in before.values()} == {None, 30}
        assert {n for n, _ in got.values()} == {None, 20}
        orphans = s.scalar(
            select(func.count())
            .select_from(DvhSampled)
            .outerjoin(Dvh, Dvh.dvh_id == DvhSampled.dvh_id)
            .where(Dvh.dvh_id.is_(None))
        )
        assert orphans == 0
        _assert_equal(_backfilled(s, pid), got)


def test_erasure_deletes_the_sampled_curves(db: Db, tmp_path: Path) -> None:
    assert "dvh_sampled" in person_tables()
    write_patient(tmp_path / "a", "SM-3", 303)
    write_patient(tmp_path / "b", "SM-4", 304)
    run_import(db.factory, [tmp_path / "a", tmp_path / "b"], db.options())
    with db.factory.begin() as s:
        gone, kept = _person(s, "SM-3"), _person(s, "SM-4")
        n_gone = len(_stored(s, gone))
        report = erase_person(s, gone)
        assert report.rows_by_table["dvh_sampled"] == n_gone > 0
    with db.factory() as s:
        assert _stored(s, gone) == {}
        _assert_equal(_stored(s, kept), _expected(s, kept))
