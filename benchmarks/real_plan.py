"""A real DICOM-RT plan through the platform's dose path, end to end.

Usage::

    .venv/bin/python benchmarks/real_plan.py              # embedded SQLite
    .venv/bin/python benchmarks/real_plan.py --pg         # also a throw-away PostgreSQL
    .venv/bin/python benchmarks/real_plan.py --url postgresql+psycopg://u@h:p/db

The plan is the dicompyler-core 0.5.6 example (BSD; a breast plan, 7 fractions,
RTPLAN and RTDOSE in one frame of reference), fetched and extracted into
``benchmarks/_work/example_data`` by :func:`benchmarks.dvh_speed._example_data`
(gitignored). In a fresh temporary data directory (and database) the script creates
a centre and its key, records the patient's consent (``cohort.service``), imports the
folder with ``rtcohort import`` and then checks, printing a table:

a. the stored DVHs against ``rtcohort dvh --rtstruct --rtdose`` on the same files
   (volume, mean, max, D95%, V20Gy per structure);
b. the ``dvh_sampled`` rows against a resampling of the stored cumulative curve
   written here with numpy (every 1 Gy, physical and EQD2 at alpha/beta 3 with the
   plan's fractions);
c. the dose-metric rows (``dvh_metric`` / MEASUREMENT) against values computed here
   from the stored DVH;
d. the dashboards' dose reads (``cohort.benchmark.queries_dose``) of breast Heart;
e. withdrawal with erasure leaves no row of the person in the dose tables.

Any failed check is printed and the exit code is 1. Never run by ``make test``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from benchmarks import _real_plan_checks as chk  # noqa: E402
from benchmarks._real_plan_ref import CheckFailedError  # noqa: E402
from benchmarks.dvh_speed import _example_data  # noqa: E402

CENTRE = "REAL01"
SITE = "breast"
PASSWORD = "real-plan-benchmark-password"


_ENV = (
    "RTCOHORT_DATA_DIR",
    "RTCOHORT_DATABASE_URL",
    "RTCOHORT_ADMIN_PASSWORD",
    "RTCOHORT_USER",
)


@contextmanager
def _environment(data: Path, url: str | None) -> Iterator[None]:
    from rtcohort.settings import get_settings

    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ["RTCOHORT_DATA_DIR"] = str(data)
    os.environ["RTCOHORT_ADMIN_PASSWORD"] = PASSWORD
    os.environ.pop("RTCOHORT_USER", None)
    if url is None:
        os.environ.pop("RTCOHORT_DATABASE_URL", None)
    else:
        os.environ["RTCOHORT_DATABASE_URL"] = url
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


def _setup(work: Path, folder: Path) -> dict[str, Any]:
    """Centre, key, admin and the consent course of the plan's patient."""
    import pydicom

    from cohort.centres import add_centre
    from cohort.service import acting_user, record_consent
    from cohort.users import add_user, ensure_admin
    from etl.deid.identity import identify
    from etl.deid.keys import load_key, new_key, write_key
    from omop.engine import make_engine, session_factory
    from rtcohort.settings import get_settings

    chk.run_cli(["db", "upgrade"])
    key_path = work / "keys" / f"{CENTRE}.key"
    key_path.parent.mkdir(mode=0o700)
    write_key(new_key(CENTRE), key_path)
    key = load_key(key_path, CENTRE)
    ct = pydicom.dcmread(folder / "ct.0.dcm", stop_before_pixels=True)
    plan = pydicom.dcmread(folder / "rtplan.dcm", stop_before_pixels=True)
    who = identify(key, str(ct.PatientID))
    day = datetime.date(2026, 1, 5)  # consent recorded now, for a past course
    born = str(ct.get("PatientBirthDate", "") or "")
    year_of_birth = int(born[:4]) if len(born) == 8 else 1950
    engine = make_engine(get_settings().resolved_database_url())
    factory = session_factory(engine)
    with factory.begin() as session:
        ensure_admin(session, PASSWORD)
        add_centre(session, CENTRE, "real plan benchmark")
        add_user(session, "clin-real", "clinician", [CENTRE], PASSWORD)
        actor = acting_user(session, "admin")
        for state, when in (("approached", day - datetime.timedelta(days=7)),
                            ("consented", day)):  # fmt: skip
            record_consent(
                session, actor, centre_code=CENTRE, pseudonym=who.pseudonym,
                state=state, event_date=who.shift(when),
                year_of_birth=year_of_birth, sex="F",
                site=SITE, key=key,
            )  # fmt: skip
    fractions = int(plan.FractionGroupSequence[0].NumberOfFractionsPlanned)
    return {"engine": engine, "factory": factory, "key_path": key_path,
            "pseudonym": who.pseudonym, "day": who.shift(day),
            "fractions": fractions}  # fmt: skip


def run_backend(label: str, url: str | None, folder: Path) -> list[str]:
    """Run the whole path on one backend; print the tables; return the failures."""
    failures: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="rtcohort-realplan-"))
    inbox = work / "inbox"
    shutil.copytree(folder, inbox)
    print(f"\n=== {label} ===")
    try:
        with _environment(work / "data", url):
            ctx = _setup(work, folder)
            out, took = chk.run_cli(["import", str(inbox), "--centre", CENTRE,
                              "--key-file", str(ctx["key_path"])])  # fmt: skip
            print(f"import: {took:.2f} s\n{out.strip()}")
            chk.FIGURES.setdefault(label, {})["import_s"] = took
            cli_rows, took = chk.cli_dvh(folder)
            chk.FIGURES[label]["cli_dvh_s"] = took
            for name, step in chk.steps(ctx, cli_rows):
                try:
                    step(label)
                except CheckFailedError as exc:
                    failures.append(f"{label} {name}: {exc}")
                    print(f"FAILED {name}: {exc}")
            ctx["engine"].dispose()
    except CheckFailedError as exc:
        failures.append(f"{label}: {exc}")
        print(f"FAILED: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return failures


def _pg_database(url: str) -> tuple[str, Any]:
    """Create a fresh database on the server of ``url``; return its URL, a dropper."""
    from sqlalchemy import create_engine, make_url, text

    name = f"realplan_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(False), drop


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when any check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="PostgreSQL server URL (a fresh database is "
                        "created on it and dropped afterwards)")  # fmt: skip
    parser.add_argument("--pg", action="store_true",
                        help="start a throw-away PostgreSQL server")  # fmt: skip
    args = parser.parse_args(argv)
    folder = _example_data()
    print(f"plan: {folder} (load average {os.getloadavg()[0]:.1f})")
    failures = run_backend("sqlite", None, folder)
    server = None
    if args.pg and args.url is None:
        from tests.pgserver import start_postgres

        server = start_postgres()
        args.url = server.url()
    try:
        if args.url is not None:
            url, drop = _pg_database(args.url)
            try:
                failures += run_backend("postgresql", url, folder)
            finally:
                drop()
    finally:
        if server is not None:
            server.stop()
    chk.print_summary()
    for f in failures:
        print(f"FAILURE: {f}")
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
