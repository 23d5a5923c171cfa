"""`write_cohort_files` reports each centre once all its patients are written."""

from __future__ import annotations

from pathlib import Path

from cohort.simulate.files import write_cohort_files
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
