"""`write_cohort_files` reports each centre once written; the DICOM writer alone."""

from __future__ import annotations

from pathlib import Path

from cohort.simulate.files import (
    write_centre_files,
    write_cohort_files,
    write_dicom_files,
)
from cohort.simulate.national import simulate_national
from cohort.simulate.params import SimulationParams


def test_each_centre_is_reported_when_written_and_again_on_resume(
    tmp_path: Path,
) -> None:
    cohort = simulate_national(SimulationParams(centres=2, patients=2, seed=3))
    centres = list(dict.fromkeys(p.centre for p in cohort.patients))
    folders = {
        c: [
            tmp_path / c / "dicom" / p.hospital_id
            for p in cohort.patients
            if p.centre == c
        ]
        for c in centres
    }
    seen: list[tuple[str, bool, bool]] = []

    def written(centre: str) -> None:
        seen.append((
            centre,
            all((f / "truth.json").is_file() for f in folders[centre]),
            (tmp_path / centre / "consent.csv").is_file(),
        ))  # fmt: skip

    write_cohort_files(cohort, tmp_path, seed=3, centre_written=written)
    assert seen == [(c, True, True) for c in centres]
    seen.clear()
    write_cohort_files(cohort, tmp_path, seed=3, centre_written=written)  # resumed
    assert seen == [(c, True, True) for c in centres]


def test_the_dicom_writer_never_rewrites_the_centres_files(tmp_path: Path) -> None:
    """The demo reads consent and rules while the DICOM-RT is written beside them."""
    cohort = simulate_national(SimulationParams(centres=2, patients=2, seed=3))
    write_centre_files(cohort, tmp_path)
    others = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in others}

    write_dicom_files(cohort, tmp_path, seed=3)

    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in others} == before
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert {p.relative_to(tmp_path).parts[1] for p in written if p not in before} == {
        "dicom"
    }
    for centre in {p.centre for p in cohort.patients}:  # private, as the FHIR files
        assert (tmp_path / centre / "dicom").stat().st_mode & 0o777 == 0o700
