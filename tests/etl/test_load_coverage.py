"""Import stores no metric that depends on dose it does not have (issue 18)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select

from etl.dose.coverage import metric_allowed
from etl.ingest.run import run_import
from omop.ingest_tables import Dvh, DvhMetric
from tests.etl.ingest_corpus import write_patient
from tests.etl.ingest_db import Db, make_db


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("coverage"))


def test_partly_covered_structures_keep_only_max_and_volume(
    db: Db, tmp_path: Path
) -> None:
    folder = tmp_path / "cut"
    write_patient(folder, "COV-1", 118)
    ds = pydicom.dcmread(folder / "RTDOSE.dcm")
    keep = int(ds.NumberOfFrames) // 2  # the lower half of the frames only
    ds.PixelData = ds.pixel_array[:keep].tobytes()
    ds.NumberOfFrames = keep
    ds.GridFrameOffsetVector = list(ds.GridFrameOffsetVector)[:keep]
    ds.save_as(folder / "RTDOSE.dcm", enforce_file_format=True)
    run_import(db.factory, [folder], db.options())
    with db.factory() as s:
        rows = s.scalars(select(Dvh)).all()
        partial = [d for d in rows if 0 < d.outside_grid_cc < 0.99 * d.volume_cc]
        assert partial, "the cut grid leaves some structure partly covered"
        for d in rows:
            coverage = 100.0 * (d.volume_cc - d.outside_grid_cc) / d.volume_cc
            stored = set(
                s.scalars(select(DvhMetric.metric).where(DvhMetric.dvh_id == d.dvh_id))
            )
            if coverage < 99.0:
                assert stored <= {"Max[Gy]", "EQD2 Max[Gy]", "Volume[cc]"}, d.roi_name
                assert "Volume[cc]" in stored
            else:
                assert any(m.startswith("Mean") for m in stored), d.roi_name
            assert all(metric_allowed(m, coverage) for m in stored if m != "Volume[cc]")
