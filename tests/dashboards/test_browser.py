"""The web app in headless Chromium (Playwright) against `rtcohort serve` on loopback.

A small demo database (`demo --centres 2 --patients 3 --seed 2 --no-serve`) is built
once per test session; a patient link comes from `rtcohort invite --print --pseudonym`.
Screenshots are saved under the pytest temporary folder (``screenshots``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

PASSWORD = "browser-demo-password"
FIGURES: dict[str, float] = {}


def _chromium() -> str:
    found = os.environ.get("RTCOHORT_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("headless Chromium not found: install Debian chromium or set "
                    "RTCOHORT_CHROMIUM")  # fmt: skip
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    base: str
    data: Path
    env: dict[str, str]
    shots: Path

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "rtcohort.cli", *args],
            env=self.env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("browser")
    data = tmp / "data"
    env = dict(os.environ)
    for name in ("RTCOHORT_DATABASE_URL", "RTCOHORT_KEY_DIR", "RTCOHORT_USER"):
        env.pop(name, None)
    root = str(Path(__file__).resolve().parents[2])
    env.update(
        RTCOHORT_DATA_DIR=str(data), RTCOHORT_DEMO_PASSWORD=PASSWORD,
        RTCOHORT_ADMIN_PASSWORD=PASSWORD,
        PYTHONPATH=os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p),
    )  # fmt: skip
    port = _free_port()
    info = Served(f"http://127.0.0.1:{port}", data, env, tmp / "screenshots")
    info.shots.mkdir()
    info.cli("demo", "--centres", "2", "--patients", "3", "--seed", "2", "--no-serve")
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "rtcohort.cli", "serve", "--port", str(port),
         "--address", "127.0.0.1", "--key-dir", str(data / "keys")],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(info.base + "/_stcore/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("rtcohort serve did not start: "
                                + (tmp / "serve.log").read_text())  # fmt: skip
                time.sleep(0.3)
        yield info
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=_chromium(), headless=True,
            args=["--no-sandbox", "--disable-gpu"],
        )  # fmt: skip
        yield chromium
        chromium.close()


def _engine(served: Served) -> Any:
    from omop.engine import make_engine
    from rtcohort.settings import get_settings
    from rtcohort.wiring import configure_audit

    get_settings.cache_clear()
    engine = make_engine(f"sqlite:///{served.data / 'rtcohort.sqlite'}")
    configure_audit(engine)
    return engine


def _consented_hus(served: Served) -> tuple[str, int, str]:
    """A living, consented HUS patient and a timepoint they have not answered.

    The demo simulates deaths relative to today, so which patients are alive
    changes from day to day (a deceased patient's link is refused)."""
    from cohort.invitations import without_deaths
    from cohort.service import acting_user, list_patients
    from instruments.store import read_prom_scores
    from omop.engine import session_factory

    engine = _engine(served)
    with session_factory(engine)() as s:
        rows = list_patients(s, acting_user(s, "admin"))
        hus = [r for r in rows if r.centre == "HUS" and r.state == "consented"]
        living = without_deaths(s, {r.person_id for r in hus})
        hus = [r for r in hus if r.person_id in living]
        scores = read_prom_scores(s, [r.person_id for r in hus])
    engine.dispose()
    # The demo records PROMs too: take a patient and a timepoint with no answers yet.
    answered = set(zip(scores["person_id"], scores["timepoint"], strict=True))
    for timepoint in ("m12", "m24", "m36", "m60", "m6", "m3"):
        for r in hus:
            if (r.person_id, timepoint) not in answered:
                return r.pseudonym, r.person_id, timepoint
    raise AssertionError("every consented HUS patient answered every timepoint")


def _stored(served: Served, person_id: int) -> tuple[Any, list[Any]]:
    from cohort.service import acting_user, completion_report
    from instruments.store import read_prom_scores
    from omop.engine import session_factory

    engine = _engine(served)
    with session_factory(engine)() as s:
        scores = read_prom_scores(s, [person_id])
        report = completion_report(s, acting_user(s, "admin"))
    engine.dispose()
    return scores, report


def _answer_every_step(page: Any, served: Served) -> list[int]:
    """Answer every item with its second answer, step by step; return the items."""
    answered: list[int] = []
    steps = [range(1, 6), range(6, 11), range(11, 16), range(16, 21),
             range(21, 26), range(26, 29), range(29, 31)]  # fmt: skip
    for step, numbers in enumerate(steps):
        try:
            page.get_by_text(f"Step {step + 1} of 8").wait_for()
        except Exception:
            page.screenshot(path=served.shots / "failed-360.png")
            raise
        for n in numbers:
            group = page.get_by_role("radiogroup", name=re.compile(rf"^{n}\\?\. "))
            group.wait_for()
            assert (group.get_attribute("aria-label") or "").startswith(f"{n}. ")
            group.locator("label").nth(1).click()  # the second answer: 2
            answered.append(n)
        page.wait_for_timeout(300)
        # Each answer reruns the script; while a rerun is drawing, the old step's
        # button can still be on the page beside the new one. Click once it ends.
        _idle(page)
        if step == 0:
            page.screenshot(path=served.shots / "prom-answered-360.png")
        page.get_by_role("button", name="Next").click()
    return answered


def _idle(page: Any, timeout_ms: int = 30_000) -> None:
    """Wait until the app's script is not running (no status widget)."""
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=timeout_ms,
    )


def test_patient_answers_all_30_items_on_a_phone(
    served: Served, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(served.data))
    pseudonym, person_id, timepoint = _consented_hus(served)
    _, before = _stored(served, person_id)
    done_before = sum(
        r.completed for r in before if r.centre == "HUS" and r.timepoint == timepoint
    )
    out = served.cli("invite", "--centre", "HUS", "--timepoint", timepoint,
                     "--pseudonym", pseudonym, "--print",
                     "--link-base", served.base + "/prom?t=")  # fmt: skip
    link = json.loads(out.strip().splitlines()[-1])
    assert link["pseudonym"] == pseudonym

    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(link["url"])
    page.get_by_role("radiogroup").first.wait_for()
    FIGURES["link_to_first_item_s"] = time.perf_counter() - started
    page.screenshot(path=served.shots / "prom-step1-360.png", full_page=True)
    # The page fits the phone's width: no horizontal scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    answered = _answer_every_step(page, served)
    assert answered == list(range(1, 31))
    page.get_by_text("Check your answers", exact=True).wait_for()
    page.screenshot(path=served.shots / "prom-review-360.png", full_page=True)
    _idle(page)
    started = time.perf_counter()
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("Your answers have been sent").wait_for()
    FIGURES["submit_to_stored_s"] = time.perf_counter() - started
    page.screenshot(path=served.shots / "prom-thanks-360.png", full_page=True)

    scores, report = _stored(served, person_id)
    answers = scores[scores["timepoint"] == timepoint]
    assert len(answers) == 1
    # Every item answered 2: QL2 = (2 - 1) / 6 * 100; PF2 = (1 - (2 - 1) / 3) * 100.
    assert float(answers.iloc[0]["QL2"]) == pytest.approx(100 / 6)
    assert float(answers.iloc[0]["PF2"]) == pytest.approx(200 / 3)
    hus_rows = [r for r in report if r.centre == "HUS" and r.timepoint == timepoint]
    assert sum(r.completed for r in hus_rows) == done_before + 1
    assert all(r.completed <= r.expected for r in hus_rows)

    # Browser back after submit, then the same link in a new tab: refused.
    page.go_back()
    again = context.new_page()
    again.goto(link["url"])
    again.get_by_text("already been sent").wait_for()
    assert again.get_by_role("radiogroup").count() == 0
    again.screenshot(path=served.shots / "prom-reused-360.png", full_page=True)
    context.close()
    print(f"\nfigures: {FIGURES}")
    (served.shots / "figures.json").write_text(json.dumps(FIGURES))


def test_clinician_signs_in_and_wrong_password_gets_one_message(
    served: Served, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(served.base)
    page.get_by_label("Username", exact=True).fill("clinician-hus")
    page.get_by_label("Password", exact=True).fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    message = page.get_by_text("The username or password is not right")
    message.wait_for()
    assert message.count() == 1
    page.screenshot(path=served.shots / "signin-wrong-1280.png", full_page=True)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("clinician · HUS").wait_for()
    assert page.get_by_text("clinician-hus").count() >= 1
    page.get_by_text("Toxicity assessments due").wait_for()  # the clinician's home
    page.screenshot(path=served.shots / "clinician-home-1280.png", full_page=True)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You have signed out.").wait_for()
    context.close()


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(base)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _gradings(served: Served, pseudonym: str, timepoint: str) -> list[dict[str, Any]]:
    from instruments.store import person_id_for_pseudonym, read_toxicity
    from omop.engine import session_factory

    engine = _engine(served)
    with session_factory(engine)() as s:
        person_id = person_id_for_pseudonym(s, pseudonym)
        frame = read_toxicity(s, [person_id])
    engine.dispose()
    return [r for r in frame.to_dict("records") if r["timepoint"] == timepoint]


@pytest.fixture(scope="session")
def due_patients(served: Served) -> list[str]:
    """Two breast patients whose RT starts today: the baseline grading is due.

    Consent through ``rtcohort consent record``, DICOM through ``rtcohort import``
    (the phantom with today's StudyDate), as a site would do.
    """
    import datetime

    from tests.etl.ingest_corpus import edit, write_patient

    today = datetime.datetime.now().astimezone().date()
    key = str(served.data / "keys" / "HUS.key")
    folder = served.data.parent / "due-dicom"
    for n, hid in enumerate(("HUS-DUE-1", "HUS-DUE-2")):
        served.cli("consent", "record", hid, "--centre", "HUS", "--key-file", key,
                   "--state", "consented", "--year-of-birth", "1960", "--sex", "F",
                   "--site", "breast", "--name", f"Due Patient {n + 1}")  # fmt: skip
        write_patient(folder / hid, hid, 400 + n)
        for path in (folder / hid).glob("*.dcm"):
            edit(path, StudyDate=today.strftime("%Y%m%d"),
                 SeriesDate=today.strftime("%Y%m%d"))  # fmt: skip
    served.cli("import", str(folder), "--centre", "HUS", "--key-file", key)
    return ["HUS-DUE-1", "HUS-DUE-2"]


@pytest.mark.parametrize("width", [1280, 360])
def test_clinician_grades_a_patient_without_toxicity_in_three_actions(
    served: Served,
    browser: Any,
    monkeypatch: pytest.MonkeyPatch,
    due_patients: list[str],
    width: int,
) -> None:
    from instruments.shortlists import shortlist

    monkeypatch.setenv("RTCOHORT_DATA_DIR", str(served.data))
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    _sign_in(page, served.base, "clinician-hus")
    page.get_by_text("Toxicity assessments due").wait_for()
    link = page.get_by_role("button", name=re.compile(r"^Grade ")).first
    link.wait_for()
    page.screenshot(path=served.shots / f"worklist-{width}.png", full_page=True)
    label = link.inner_text().strip()
    found = re.match(r"^Grade (\S+) at (\S+)$", label)
    assert found, label
    pseudonym, timepoint = found.groups()
    assert _gradings(served, pseudonym, timepoint) == []
    actions = 0
    link.click()  # 1: open
    actions += 1
    page.get_by_role("radiogroup").first.wait_for()
    page.screenshot(path=served.shots / f"grading-form-{width}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.get_by_text("I have assessed every term listed above").click()  # 2: confirm
    actions += 1
    started = time.perf_counter()
    page.get_by_role("button", name="Save").click()  # 3: save
    actions += 1
    page.get_by_text("Saved:").wait_for()
    FIGURES[f"grading_save_to_shown_s_{width}"] = time.perf_counter() - started
    FIGURES["grading_actions"] = actions
    page.screenshot(path=served.shots / f"grading-saved-{width}.png", full_page=True)
    context.close()
    rows = _gradings(served, pseudonym, timepoint)
    site = _site(served, pseudonym)
    assert sorted(r["term"] for r in rows) == sorted(t.term for t in shortlist(site))
    assert {r["grade"] for r in rows} == {0}
    assert actions == 3
    print(f"\nfigures: {FIGURES}")


def _site(served: Served, pseudonym: str) -> str:
    from cohort.service import acting_user, list_patients
    from omop.engine import session_factory

    engine = _engine(served)
    with session_factory(engine)() as s:
        rows = list_patients(s, acting_user(s, "admin"))
    engine.dispose()
    return next(r.treatment_site for r in rows if r.pseudonym == pseudonym)


#: The benchmark pages: menu label -> how many charts the demo shows on it.
BENCHMARK_PAGES = {
    "Cohort overview": 4,
    "Data completeness": 1,
    "Dose benchmarking": 2,
    "Outcome benchmarking": 1,
}


def _settled(page: Any, charts: int) -> None:
    """Wait for ``charts`` drawn charts and the script to stop running."""
    page.locator("[data-testid='stVegaLiteChart'] canvas, "
                 "[data-testid='stVegaLiteChart'] svg").nth(charts - 1).wait_for()  # fmt: skip
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000
    )


def test_viewer_opens_every_benchmark_page(served: Served, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _sign_in(page, served.base, "viewer-hus")
    page.get_by_text("viewer · HUS").wait_for()
    for label, charts in BENCHMARK_PAGES.items():
        started = time.perf_counter()
        page.get_by_role("link", name=label).click()
        try:
            page.get_by_role("heading", name=label).wait_for()
        except Exception:
            page.screenshot(path=served.shots / "failed-viewer.png", full_page=True)
            raise
        page.locator("[data-testid='stVegaLiteChart']").first.wait_for()
        slug = label.lower().replace(" ", "-")
        FIGURES[f"{slug}_first_chart_s"] = time.perf_counter() - started
        _settled(page, charts)
        FIGURES[f"{slug}_whole_page_s"] = time.perf_counter() - started
        page.screenshot(path=served.shots / f"viewer-{slug}-1280.png", full_page=True)
        assert page.locator("[data-testid='stException']").count() == 0, label
        body = page.locator("body").inner_text()
        assert "HUS" in body
        assert "TAYS" not in body, label
    context.close()
    print(f"\nfigures: {FIGURES}")


def test_researcher_fits_a_model_in_the_explorer(served: Served, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _sign_in(page, served.base, "researcher")
    page.get_by_role("link", name="NTCP explorer").click()
    page.get_by_role("heading", name="NTCP explorer").wait_for()
    page.get_by_role("button", name="Fit").click()
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )
    page.locator(
        "[data-testid='stVegaLiteChart'], [data-testid='stAlert']"
    ).first.wait_for()
    page.screenshot(path=served.shots / "researcher-explorer-1280.png", full_page=True)
    assert page.locator("[data-testid='stException']").count() == 0
    context.close()
