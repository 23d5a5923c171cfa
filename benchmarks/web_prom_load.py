"""N patients (default 50) pressing ``Submit`` at once against one ``rtcohort serve``.

On loopback, bounded in count (at most 50) and time (``--timeout-s``, default 600).
Builds a fresh SQLite database through the production writers (one centre, N consented
patients with contact-register entries, one QLQ-C30 link each), and puts every
patient's 30 answers in the server-side draft (:class:`dashboards.drafts.DraftStore`),
so each browser opens its link at the review step. Then N headless Chromium contexts
(360 x 740, Playwright's async API, the Debian ``chromium``) open their links; when
all show the review step they press ``Submit`` together. Reports the submit-to-stored
time (click to the thank-you page, which is shown after the store committed) per
patient: median, p95, max; then checks in the database that every questionnaire is
stored exactly once (one SURVEY_CONDUCT per patient, every link used).

Run: python benchmarks/web_prom_load.py [--patients 50] [--timeout-s 600]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_PATIENTS = 50
ANSWERS = {i: (1 + i % 4 if i <= 28 else 1 + i % 7) for i in range(1, 31)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(data: Path, n: int) -> tuple[str, list[tuple[int, str]]]:
    """Return the database URL and (person_id, token) of n consented patients."""
    from cohort import consent
    from cohort.centres import add_centre
    from cohort.contacts import ContactDetails, store_contact
    from cohort.invitations import SIGNING_KEY_FILE, issue, load_signing_key
    from dashboards.drafts import DraftStore
    from etl.deid.identity import identify
    from etl.deid.keys import load_key, new_key, write_key
    from omop.cdm import Person
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory
    from rtcohort.settings import get_settings
    from rtcohort.wiring import after_upgrade

    get_settings.cache_clear()
    url = get_settings().resolved_database_url()
    engine = make_engine(url)
    upgrade(engine)
    after_upgrade(engine)
    write_key(new_key("LOAD"), data / "keys" / "LOAD.key")
    key = load_key(data / "keys" / "LOAD.key", "LOAD")
    signing = load_signing_key(data / SIGNING_KEY_FILE)
    drafts = DraftStore(data / "prom-drafts")
    links: list[tuple[int, str]] = []
    with session_factory(engine).begin() as session:
        site = add_centre(session, "LOAD")
        for i in range(n):
            who = identify(key, f"LOAD-{i:04d}")
            event = consent.record_consent(
                session, centre=site, pseudonym=who.pseudonym, state="consented",
                event_date=datetime.date(2025, 1, 10), actor="benchmark",
                year_of_birth=1960, sex="F", site="breast",
            )  # fmt: skip
            person = session.get(Person, event.person_id)
            assert person is not None
            store_contact(session, key, person, ContactDetails(
                name=f"Load {i}", date_offset_days=who.date_offset_days))  # fmt: skip
            inv = issue(session, signing, event.person_id, "m3")
            drafts.save(inv.invitation_id, ANSWERS)
            links.append((event.person_id, inv.token))
    engine.dispose()
    return url, links


def stored_counts(url: str, person_ids: list[int]) -> tuple[dict[int, int], int]:
    """Return SURVEY_CONDUCT rows per person and the number of used links."""
    from sqlalchemy import func, select

    from omop.cdm import SurveyConduct
    from omop.cohort_tables import Invitation
    from omop.engine import make_engine, session_factory

    engine = make_engine(url)
    with session_factory(engine)() as s:
        rows = dict(
            s.execute(
                select(SurveyConduct.person_id, func.count())
                .where(SurveyConduct.person_id.in_(person_ids))
                .group_by(SurveyConduct.person_id)
            ).all()
        )
        used = s.scalar(
            select(func.count()).where(
                Invitation.person_id.in_(person_ids), Invitation.used_at.is_not(None)
            )
        )
    engine.dispose()
    return {p: int(rows.get(p, 0)) for p in person_ids}, int(used or 0)


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds of ``pid`` and its descendants (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


async def drive(
    base: str, tokens: list[str], chromium: str, marks: list[float], server: int
) -> list[float]:
    """Open every link, wait for all review steps, submit together; return times.

    ``marks`` gets the server's CPU seconds when the submit wave starts and ends.
    """
    from playwright.async_api import async_playwright

    ready = 0
    go = asyncio.Event()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, headless=True,
            args=["--no-sandbox", "--disable-gpu"],
        )  # fmt: skip

        async def patient(token: str) -> float:
            nonlocal ready
            context = await browser.new_context(viewport={"width": 360, "height": 740})
            page = await context.new_page()
            page.set_default_timeout(300_000)
            await page.goto(f"{base}/prom?t={token}")
            await page.get_by_text("Check your answers", exact=True).wait_for()
            ready += 1
            if ready == len(tokens):
                marks.append(cpu_seconds(server))
                go.set()
            await go.wait()
            started = time.perf_counter()
            await page.get_by_role("button", name="Submit").click()
            await page.get_by_text("Your answers have been sent").wait_for()
            elapsed = time.perf_counter() - started
            await context.close()
            return elapsed

        times = await asyncio.gather(*(patient(t) for t in tokens))
        marks.append(cpu_seconds(server))
        await browser.close()
    return list(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=MAX_PATIENTS)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    args = parser.parse_args()
    n = max(1, min(args.patients, MAX_PATIENTS))
    chromium = os.environ.get("RTCOHORT_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit(
            "headless Chromium not found: install chromium or set RTCOHORT_CHROMIUM"
        )
    tmp = Path(tempfile.mkdtemp(prefix="web-prom-load-"))
    data = tmp / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RTCOHORT_DATABASE_URL", "RTCOHORT_KEY_DIR", "RTCOHORT_USER")
    }
    env.update(RTCOHORT_DATA_DIR=str(data),
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH"))
                                          if p))  # fmt: skip
    os.environ.update(RTCOHORT_DATA_DIR=str(data))
    os.environ.pop("RTCOHORT_DATABASE_URL", None)
    url, links = build(data, n)
    port = _free_port()
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "rtcohort.cli", "serve", "--port", str(port),
         "--address", "127.0.0.1", "--key-dir", str(data / "keys")],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/_stcore/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("rtcohort serve did not start: " + str(tmp / "serve.log"))
                time.sleep(0.3)
        started = time.perf_counter()
        marks: list[float] = []
        tokens = [t for _, t in links]
        times = asyncio.run(
            asyncio.wait_for(
                drive(base, tokens, chromium, marks, server.pid),
                timeout=args.timeout_s,
            )
        )
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    per_person, used = stored_counts(url, [p for p, _ in links])
    once = sum(1 for c in per_person.values() if c == 1)
    ordered = sorted(times)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    result: dict[str, Any] = {
        "patients": n,
        "stored_exactly_once": once,
        "links_used": used,
        "submit_to_stored_s": {
            "median": round(statistics.median(times), 3),
            "p95": round(p95, 3),
            "max": round(ordered[-1], 3),
        },
        "submit_wave_s": round(ordered[-1], 3),
        "server_cpu_s_in_submit_wave": round(marks[1] - marks[0], 2),
        "wall_s_incl_page_loads": round(wall, 1),
    }
    print(json.dumps(result, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    if once != n or used != n:
        sys.exit(f"FAILED: {once}/{n} stored exactly once, {used}/{n} links used")


if __name__ == "__main__":
    main()
