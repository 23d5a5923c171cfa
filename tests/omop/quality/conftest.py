"""A database per backend holding one RT patient loaded through the production path.

DICOM import (``etl.ingest.run.run_import``) then consent (``cohort.consent``); the
modules add assessments through ``instruments.store``. Module scope: each test
mutates inside its own session and rolls back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.etl.ingest_db import Db, make_db


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("rtchecks"))
