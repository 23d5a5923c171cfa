"""`import` of a per-beam dose set (DoseSummationType BEAM): summed or held (18.3).

An analytic phantom with a uniform 50 Gy plan dose (plan of two beams); its RTDOSE is
replaced by one RTDOSE per beam, beam 1 carrying 30% and beam 2 70% of the dose
(DoseGridScaling times the share). Complete, the set is summed to the plan dose and
loaded with DVHs: PTV D95% = Mean = 50 Gy (truth of the phantom). With beam 2 missing,
the set is held (``beam-set-incomplete``, naming beam 2); when beam 2 arrives, the held
beam is retried and the sum loaded. Both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from sqlalchemy import select

from etl.dose.metrics import evaluate
from etl.ingest.qa import Reason
from etl.ingest.run import run_import
from etl.store.dvh_rows import dvh_from_row
from omop.ingest_tables import Dvh, IngestDataset, IngestObject, QuarantineItem
from tests.etl.ingest_corpus import small_spec, write_patient
from tests.etl.ingest_db import Db, make_db

SHARES = {1: Decimal("0.3"), 2: Decimal("0.7")}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("beams"))


def write_beams(folder: Path, pid: str, seed: int) -> dict[int, Path]:
    """The phantom with its plan dose split into per-beam doses; {beam: file}."""
    write_patient(
        folder,
        pid,
        seed,
        small_spec(
            dose=[{"dose_gy": 50.0}],
            plan={"target": "PTV", "prescription_gy": 50.0, "fractions": 25},
        ),
    )
    plan = pydicom.dcmread(folder / "RTPLAN.dcm")
    assert [
        int(b.ReferencedBeamNumber)
        for b in plan.FractionGroupSequence[0].ReferencedBeamSequence
    ] == list(SHARES)
    out: dict[int, Path] = {}
    for beam, share in SHARES.items():
        dose = pydicom.dcmread(folder / "RTDOSE.dcm")
        dose.SOPInstanceUID = dose.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dose.DoseSummationType = "BEAM"
        dose.DoseGridScaling = str(Decimal(str(dose.DoseGridScaling)) * share)
        fg, ref = Dataset(), Dataset()
        fg.ReferencedFractionGroupNumber = 1
        ref.ReferencedBeamNumber = beam
        fg.ReferencedBeamSequence = Sequence([ref])
        dose.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = Sequence(
            [fg]
        )
        out[beam] = folder / f"RTDOSE_beam{beam}.dcm"
        dose.save_as(out[beam], enforce_file_format=True)
    (folder / "RTDOSE.dcm").unlink()
    (folder / "truth.json").unlink(missing_ok=True)
    return out


def _ptv(db: Db, dataset_id: int) -> tuple[float, float]:
    with db.factory() as session:
        row = session.scalars(
            select(Dvh).where(Dvh.dataset_id == dataset_id, Dvh.roi_name == "PTV")
        ).one()
        dvh = dvh_from_row(row)
    d95, mean = evaluate(dvh, "D95%[Gy]"), evaluate(dvh, "Mean[Gy]")
    assert d95 is not None and mean is not None
    return d95, mean


def test_complete_beam_set_is_summed_and_loaded(db: Db, tmp_path: Path) -> None:
    folder = tmp_path / "p"
    beams = write_beams(folder, "BEAMS-1", 1831)
    summary = run_import(db.factory, [folder], db.options())
    assert summary.loaded == 1
    assert summary.datasets_held == 0
    assert Reason.BEAM_DOSE_ONLY.value not in summary.warnings
    with db.factory() as session:
        (dataset,) = session.scalars(select(IngestDataset)).all()
        doses = set(
            session.scalars(
                select(IngestObject.sop_instance_uid).where(
                    IngestObject.modality == "RTDOSE"
                )
            )
        )
    assert dataset.dose_summation_type == "PLAN"
    # the sum (its own UID) and the two beam doses (UIDs remapped) are recorded
    assert dataset.dose_sop_instance_uid in doses
    assert len(doses) == 1 + len(beams)
    d95, mean = _ptv(db, dataset.dataset_id)
    assert d95 == pytest.approx(50.0, abs=1e-3)
    assert mean == pytest.approx(50.0, abs=1e-3)
    again = run_import(db.factory, [folder], db.options())
    assert (again.loaded, again.unchanged) == (0, 1)


def test_incomplete_beam_set_is_held_then_summed(db: Db, tmp_path: Path) -> None:
    folder = tmp_path / "p"
    beams = write_beams(folder, "BEAMS-2", 1832)
    later = tmp_path / "later"
    later.mkdir()
    beams[2].rename(later / beams[2].name)
    summary = run_import(db.factory, [folder], db.options())
    assert summary.loaded == 0
    assert summary.datasets_held == 1
    assert summary.quarantined[Reason.BEAM_SET_INCOMPLETE.value] > 0
    with db.factory() as session:
        reasons = {
            (q.reason_code, q.reason)
            for q in session.scalars(select(QuarantineItem)).all()
            if q.reason_code == Reason.BEAM_SET_INCOMPLETE.value
        }
    assert reasons
    assert all("beam 2 of 2 missing" in detail for _, detail in reasons)
    summary = run_import(db.factory, [later], db.options())
    assert summary.loaded == 1
    assert summary.datasets_held == 0
