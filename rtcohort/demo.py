"""The demo: a synthetic national cohort through the whole platform.

Composition only: each step calls the owning package (:mod:`rtcohort.demo_steps`):
``omop`` upgrade; the national simulator's DICOM-RT and FHIR (``cohort.simulate``);
consent and the centres' naming rules; the DICOM sent by a TPS-like SCU to the C-STORE
receiver on loopback (``etl.arrive``) and imported from its inbox (``etl.ingest``);
toxicity and PROMs through the FHIR import; the dose-metric export through the
permission layer; ``db quality`` last.

Idempotent: every step finds what is there and adds nothing; once a run has
completed, ``DATA_DIR/demo/complete.json`` records its sizes and a second run with the
same sizes goes straight to the summary. :func:`reset_demo` starts over.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from etl.deid.keys import CentreKey
from etl.store.export import ExportTable
from rtcohort.demo_accounts import DemoAccount
from rtcohort.demo_pipeline import DicomWriter, send_and_import

__all__ = ["DEMO_METRICS", "DemoReport", "reset_demo", "run_demo"]

#: Dose metrics shown and exported by the demo.
DEMO_METRICS: tuple[str, ...] = ("Mean[Gy]", "D95%[Gy]", "V20Gy[%]", "D0.03cc[Gy]")

#: ``(step, done, total)`` progress callback.
Progress = Callable[[str, int, int], None]


@dataclass
class CentreRow:
    """What the demo shows per centre."""

    centre: str
    enrolled: int = 0
    consented: int = 0
    declined: int = 0
    rate: float | None = None
    loaded: int = 0
    held_files: int = 0
    proms: dict[str, int] = field(default_factory=dict)


@dataclass
class DemoReport:
    """The outcome of :func:`run_demo` (everything read back from the database)."""

    messages: list[str] = field(default_factory=list)
    centres: list[CentreRow] = field(default_factory=list)
    persons: int = 0
    datasets_loaded_now: int = 0
    datasets_unchanged: int = 0
    held: Counter[str] = field(default_factory=Counter)
    mapped: int = 0
    unmapped: Counter[str] = field(default_factory=Counter)
    toxicity: Counter[tuple[str, int]] = field(default_factory=Counter)
    metrics: ExportTable | None = None
    csv_path: Path | None = None
    accounts: list[DemoAccount] = field(default_factory=list)
    #: Patients simulated, files sent through the receiver (this run) and refused.
    patients: int = 0
    files_sent: int = 0
    files_refused: int = 0
    #: Whether this run reused a completed demo (nothing simulated or imported).
    reused: bool = False
    #: Wall time per phase (s), in order.
    seconds: dict[str, float] = field(default_factory=dict)
    #: Quality checks failing their threshold (known failures excepted).
    quality_failed: int = 0
    #: Deaths and withdrawals recorded (this run).
    followup: Counter[str] = field(default_factory=Counter)

    @property
    def ingest_patients_per_min(self) -> float | None:
        """Patients sent and imported per minute of the send + import phase."""
        took = self.seconds.get("send + import", 0.0)
        if self.reused or not took:
            return None
        return 60.0 * self.patients / took


#: The marker of a completed demo (its sizes), under ``DATA_DIR/demo``.
COMPLETE_FILE = "complete.json"


class _Clock:
    """Wall time per phase, into ``report.seconds``."""

    def __init__(self, report: DemoReport) -> None:
        self.report = report

    def phase(self, name: str, started: float) -> None:
        self.report.seconds[name] = (
            self.report.seconds.get(name, 0.0) + time.perf_counter() - started
        )


def _key(keys_dir: Path, centre: str) -> tuple[Path, CentreKey]:
    from etl.deid.keys import load_key, new_key, write_key
    from omop.private_files import make_private_dirs

    path = keys_dir / f"{centre}.key"
    if not path.exists():
        make_private_dirs(keys_dir)
        write_key(new_key(centre), path)
    return path, load_key(path, centre)


def _ensure_centres(session: Session, codes: list[str]) -> None:
    from cohort.centres import add_centre, list_centres

    present = {c.care_site_source_value for c in list_centres(session)}
    for code in codes:
        if code not in present:
            add_centre(session, code, f"{code} (synthetic demo centre)")


def reset_demo(engine: Engine, data_dir: Path) -> None:
    """Delete the demo: its database and ``data_dir``.

    A SQLite database file is deleted; another database is downgraded to Alembic
    ``base`` (every table dropped).

    Refuses (``ValueError``) a data directory that holds files but no ``demo``
    folder: it is not a demo's, and nothing is deleted.
    """
    from alembic import command

    from omop.database import alembic_config, current_revision

    # the default SQLite database may be there already (the engine is open)
    foreign = data_dir.exists() and any(
        not p.name.startswith("rtcohort.sqlite") for p in data_dir.iterdir()
    )
    if foreign and not (data_dir / "demo").is_dir():
        raise ValueError(
            f"--reset: {data_dir} is not a demo data directory (no demo/ folder); "
            "nothing deleted"
        )
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database and database != ":memory:":
        engine.dispose()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(database + suffix).unlink(missing_ok=True)
    elif current_revision(engine) is not None:
        command.downgrade(
            alembic_config(engine.url.render_as_string(hide_password=False)), "base"
        )
    engine.dispose()
    shutil.rmtree(data_dir, ignore_errors=True)


def _complete(demo_dir: Path, sizes: dict[str, int]) -> bool:
    marker = demo_dir / COMPLETE_FILE
    if not marker.exists():
        return False
    done = json.loads(marker.read_text(encoding="utf-8"))
    return bool(done.get("sizes") == sizes)


def run_demo(
    engine: Engine,
    data_dir: Path,
    *,
    centres: int = 5,
    patients: int = 40,
    seed: int = 1,
    username: str = "admin",
    progress: Progress | None = None,
    accounts_password: str | None = None,
) -> DemoReport:
    """Run the demo on ``engine``; its files go under ``data_dir/demo``.

    With ``accounts_password`` the demo accounts are created too
    (:mod:`rtcohort.demo_accounts`). ``report.quality_failed`` counts the quality
    checks that fail their threshold (known failures excepted).
    """
    from cohort.simulate import centre_codes
    from omop.database import upgrade
    from omop.engine import session_factory
    from rtcohort.wiring import after_upgrade

    def tick(step: str, done: int, total: int) -> None:
        if progress is not None:
            progress(step, done, total)

    report = DemoReport()
    clock = _Clock(report)
    factory = session_factory(engine)
    t0 = time.perf_counter()
    tick("db upgrade", 0, 1)
    upgrade(engine)
    report.messages += after_upgrade(engine)
    tick("db upgrade", 1, 1)
    codes = centre_codes(centres)
    keys = {c: _key(data_dir / "keys", c) for c in codes}
    with factory.begin() as session:
        _ensure_centres(session, codes)
    clock.phase("setup", t0)

    demo_dir = data_dir / "demo"
    sizes = {"centres": centres, "patients": patients, "seed": seed}
    if _complete(demo_dir, sizes):
        report.reused = True
    else:
        _build(factory, report, clock, demo_dir, sizes, keys, username, tick)
        (demo_dir / COMPLETE_FILE).write_text(
            json.dumps({"sizes": sizes, "seconds": report.seconds}), encoding="utf-8"
        )

    t0 = time.perf_counter()
    if accounts_password is not None:
        from rtcohort.demo_accounts import ensure_demo_accounts

        with factory.begin() as session:
            report.accounts = ensure_demo_accounts(
                session, codes, accounts_password, admin=username
            )
    _summarise_and_export(factory, report, codes, username, data_dir)
    clock.phase("summary", t0)
    t0 = time.perf_counter()
    _quality(engine, report)  # the demo ends with `db quality`
    clock.phase("quality", t0)
    return report


def _quality(engine: Engine, report: DemoReport) -> None:
    from rtcohort.quality_summary import quality_verdict

    lines, report.quality_failed = quality_verdict(engine)
    report.messages += lines


def _build(  # noqa: PLR0917
    factory: sessionmaker[Session],
    report: DemoReport,
    clock: _Clock,
    demo_dir: Path,
    sizes: dict[str, int],
    keys: dict[str, tuple[Path, CentreKey]],
    username: str,
    tick: Progress,
) -> None:
    """Simulate, record consent, send, import and record the outcomes."""
    from rtcohort import demo_steps as steps

    sim = demo_dir / "sim"
    t0 = time.perf_counter()
    cohort = steps.simulate_cohort(
        sizes["centres"], sizes["patients"], sizes["seed"], sim
    )
    report.patients = len(cohort.patients)
    writer = DicomWriter(
        cohort, sim, sizes["seed"], lambda d, n: tick("simulate DICOM-RT", d, n),
        workers=steps.workers_for(report.patients),
    )  # fmt: skip
    writer.start()  # a centre is sent and imported once written (see DicomWriter)
    clock.phase("simulate", t0)
    try:
        t0 = time.perf_counter()
        with factory.begin() as session:
            steps.import_mapping(session, username, sim / "mapping_rules.csv")
            for i, (code, (_, key)) in enumerate(keys.items()):
                tick("consent", i, len(keys))
                steps.record_consents(
                    session, username, code, key, sim / code / "consent.csv"
                )
        tick("consent", len(keys), len(keys))
        clock.phase("consent", t0)

        t0 = time.perf_counter()
        send_and_import(factory, report, demo_dir, keys, username, tick, writer)
        clock.phase("send + import", t0)
    finally:
        report.seconds["DICOM-RT written (overlapped)"] = writer.finish()
    _outcomes(factory, report, clock, sim, keys, username, tick)


def _outcomes(  # noqa: PLR0917
    factory: sessionmaker[Session],
    report: DemoReport,
    clock: _Clock,
    sim: Path,
    keys: dict[str, tuple[Path, CentreKey]],
    username: str,
    tick: Progress,
) -> None:
    """Import toxicity and PROMs; record deaths and withdrawals."""
    from rtcohort import demo_steps as steps

    t0 = time.perf_counter()
    with factory.begin() as session:
        for i, (code, (_, key)) in enumerate(keys.items()):
            tick("toxicity + PROMs", i, len(keys))
            steps.import_outcomes(session, username, code, key, sim / code)
    tick("toxicity + PROMs", len(keys), len(keys))
    clock.phase("outcomes", t0)

    t0 = time.perf_counter()
    for i, (code, (_, key)) in enumerate(keys.items()):
        tick("deaths + withdrawals", i, len(keys))
        with factory.begin() as session:
            report.followup.update(
                steps.record_followup_events(
                    session, username, code, key, sim / code / "followup.csv"
                )
            )
    tick("deaths + withdrawals", len(keys), len(keys))
    clock.phase("follow-up", t0)


def _summarise_and_export(
    factory: sessionmaker[Session],
    report: DemoReport,
    codes: list[str],
    username: str,
    data_dir: Path,
) -> None:
    """Read the report back and export the dose metrics to ``demo/dose_metrics.csv``."""
    from rtcohort.demo_summary import summarise
    from rtcohort.wiring import CohortExportAccess

    with factory.begin() as session:
        summarise(session, report, codes, username)
        access = CohortExportAccess(session, username)
        from etl.store.export import dose_metric_table, write_csv

        report.metrics = dose_metric_table(
            session, access=access, metrics=list(DEMO_METRICS)
        )
    out = data_dir / "demo" / "dose_metrics.csv"
    write_csv(out, report.metrics)
    report.csv_path = out
