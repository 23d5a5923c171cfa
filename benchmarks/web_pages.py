"""Time the benchmark pages in headless Chromium: first chart and whole page.

Not run by ``make test``. Adds (or reuses) a viewer account ``bench-viewer`` at the
first centre of the database, serves the web app on loopback (``rtcohort serve``), signs
in and opens each benchmark page in turn, as the browser test does::

    python benchmarks/web_pages.py --data-dir /work/scale-pg/rtcohort-data \\
        --url postgresql+psycopg://rtcohort@127.0.0.1:55439/scale_12x2400

Each page is opened ``--rounds`` times (the first is a cache miss; later ones hit the
pages' ``st.cache_data``), each from a click on a page that has finished; the table
gives every round. Its first row is the landing page after sign-in, timed from the
click on "Sign in": it checks the password and loads the browser's chart library
for the first chart of the visit. Needs Debian's ``chromium``
(or ``RTCOHORT_CHROMIUM``) and Playwright for Python.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGES = {
    "Cohort overview": 4,
    "Data completeness": 1,
    "Dose benchmarking": 2,
    "Outcome benchmarking": 1,
}
USER, PASSWORD = "bench-viewer", "bench-viewer-password"
#: The landing page after sign-in (its chart loads the browser's chart library),
#: timed from the click on "Sign in".
LANDING = "Overview (after sign-in)"


def _viewer(url: str) -> str:
    """Add the viewer account at the first centre (kept for later runs); its code."""
    from cohort.centres import centre_codes
    from cohort.errors import UnknownUserError
    from cohort.users import add_user, get_user
    from omop.engine import make_engine, session_factory
    from rtcohort.wiring import after_upgrade

    engine = make_engine(url)
    after_upgrade(engine)
    with session_factory(engine).begin() as session:
        code = sorted(centre_codes(session).values())[0]
        try:
            get_user(session, USER)
        except UnknownUserError:
            add_user(session, USER, "viewer", [code], PASSWORD)
    engine.dispose()
    return str(code)


def _serve(url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "RTCOHORT_DATABASE_URL": url,
           "RTCOHORT_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "rtcohort.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2):
                return server, base
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit("rtcohort serve did not start") from None
            time.sleep(0.3)


def _idle(page: Any) -> None:
    """Wait until the script run has ended (no running-man status widget)."""
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000
    )


def _settled(page: Any, charts: int) -> None:
    page.locator("[data-testid='stVegaLiteChart'] canvas, "
                 "[data-testid='stVegaLiteChart'] svg").nth(charts - 1).wait_for(
                     timeout=120_000)  # fmt: skip
    _idle(page)


def _time_pages(
    base: str, code: str, rounds: int
) -> dict[str, list[tuple[float, float]]]:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("RTCOHORT_CHROMIUM") or shutil.which("chromium")
    times: dict[str, list[tuple[float, float]]] = {LANDING: []}
    times.update({p: [] for p in PAGES})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(base)
        page.get_by_label("Username", exact=True).fill(USER)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        started = time.perf_counter()
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text(f"viewer · {code}").wait_for(timeout=60_000)
        # The landing page settles first: each page is timed from a click on a page
        # that has finished (as the pages after it are).
        page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=60_000)
        first = time.perf_counter() - started
        _settled(page, 1)
        times[LANDING].append((first, time.perf_counter() - started))
        for _ in range(rounds):
            for label, charts in PAGES.items():
                started = time.perf_counter()
                page.get_by_role("link", name=label).click()
                page.get_by_role("heading", name=label).wait_for(timeout=60_000)
                page.locator("[data-testid='stVegaLiteChart']").first.wait_for(
                    timeout=120_000
                )
                first = time.perf_counter() - started
                _settled(page, charts)
                times[label].append((first, time.perf_counter() - started))
        browser.close()
    return times


def main() -> None:
    """Parse the options, serve, time, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy database URL")
    parser.add_argument("--data-dir", type=Path, required=True, help="its data folder")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    code = _viewer(args.url)
    server, base = _serve(args.url, args.data_dir)
    try:
        load = os.getloadavg()[0]
        times = _time_pages(base, code, args.rounds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"viewer of {code}; load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
    print("| page | first chart (s), each round | whole page (s), each round |")
    print("|---|---|---|")
    for label, rows in times.items():
        first = ", ".join(f"{f:.2f}" for f, _ in rows)
        whole = ", ".join(f"{w:.2f}" for _, w in rows)
        print(f"| {label} | {first} | {whole} |")


if __name__ == "__main__":
    main()
