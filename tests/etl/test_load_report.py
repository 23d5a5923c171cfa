"""etl.store.report readers on what run_import loaded (both backends)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl.ingest.run import run_import
from etl.mapping.naming import current_rules
from etl.store.report import datasets_by_centre, mapping_counts, unmapped_names
from tests.etl.ingest_corpus import small_spec, write_patient
from tests.etl.ingest_db import Db, make_db


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("report"))


def test_readers_count_what_was_loaded(db: Db, tmp_path: Path) -> None:
    spec = small_spec()
    spec["rois"] = [*spec["rois"], {**spec["rois"][0], "name": "Blob 7"}]
    truth_a = write_patient(tmp_path / "a", "RP-1", 301, spec)
    truth_b = write_patient(tmp_path / "b", "RP-2", 302, spec)
    summary = run_import(db.factory, [tmp_path], db.options())
    assert summary.loaded == 2
    names = [r["name"] for t in (truth_a, truth_b) for r in t["rois"]]
    with db.factory() as s:
        rules = current_rules(s)
        expected_unmapped = Counter(
            n for n in names if rules.map(n, "TST01").tg263_name is None
        )
        mapped, unmapped = mapping_counts(s)
        listed = unmapped_names(s)
        by_centre = datasets_by_centre(s)
    assert "Blob 7" in expected_unmapped
    assert unmapped == expected_unmapped
    assert mapped == len(names) - sum(expected_unmapped.values())
    assert [(r.centre, r.roi_name, r.structures) for r in listed] == sorted(
        (("TST01", n, k) for n, k in expected_unmapped.items()),
        key=lambda t: (-t[2], t[1]),
    )
    assert by_centre == {"TST01": 2}
