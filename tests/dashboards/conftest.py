"""Fixtures of the web app's tests (the world itself is built in web_world.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from national_world import HN_PARAMS, HN_PROJECT, National, build_national
from web_world import BACKENDS, World, build_world, new_url

T = TypeVar("T")


def _built(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    prefix: str,
    build: Callable[[str, Path], T],
) -> T:
    """Build a world on a new database of the fixture's backend, in its data dir."""
    from rtcohort.settings import get_settings

    tmp = tmp_path_factory.mktemp(prefix)
    url = new_url(request, request.param, tmp)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RTCOHORT_DATA_DIR", str(tmp / "data"))
        get_settings.cache_clear()
        built = build(url, tmp / "data")
    get_settings.cache_clear()
    return built


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> World:
    return _built(request, tmp_path_factory, "web", build_world)


@pytest.fixture
def web(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The world, with the environment of a server started on it."""
    world.env(monkeypatch)
    return world


@pytest.fixture(scope="session", params=BACKENDS)
def national(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> National:
    """The simulated national cohort (national_world.py), once per backend."""
    return _built(request, tmp_path_factory, "national", build_national)


@pytest.fixture(scope="session", params=BACKENDS)
def national_hn(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> National:
    """The simulated head and neck cohort (national_world.py), once per backend."""
    return _built(
        request, tmp_path_factory, "national_hn",
        lambda url, data: build_national(url, data, HN_PARAMS, HN_PROJECT),
    )  # fmt: skip


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach ``rtcohort serve``'s log tail to a failing browser test.

    A page waiting for a message that never comes is explained by the server's
    traceback, which is otherwise lost with the temporary folder.
    """
    outcome = yield
    report = outcome.get_result()
    served = getattr(item, "funcargs", {}).get("served")
    data = getattr(served, "data", None)
    if report.failed and call.when == "call" and isinstance(data, Path):
        log = data.parent / "serve.log"
        if log.exists():
            tail = log.read_text(errors="replace")[-4000:]
            report.sections.append(("rtcohort serve log (tail)", tail))
