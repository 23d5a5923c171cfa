"""The demo: a synthetic multi-centre cohort through the whole platform.

Composition only: each step calls the owning package (``omop`` upgrade, ``etl`` keys
and import, ``cohort`` centres and consent, ``instruments`` storage,
``etl.store.export``
through the permission layer). Idempotent: a second run finds the keys, centres,
consent records, loaded datasets and stored outcomes and adds nothing.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cohort.simulate import SimulatedPatient
from etl.deid.keys import CentreKey
from etl.store.export import ExportTable
from rtcohort.demo_accounts import DemoAccount

__all__ = ["DEMO_METRICS", "DemoReport", "run_demo"]

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
    patients: list[SimulatedPatient] = field(default_factory=list)
    accounts: list[DemoAccount] = field(default_factory=list)


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


def _record_states(  # noqa: PLR0917
    session: Session,
    username: str,
    patient: SimulatedPatient,
    key: CentreKey,
    states: tuple[str, ...],
    offset: int,
) -> None:
    """Record the consent states of ``states`` not yet in the person's history."""
    from cohort.consent import find_person, history
    from cohort.contacts import ContactDetails
    from cohort.service import acting_user, record_consent
    from etl.deid.identity import identify

    who = identify(key, patient.hospital_id)
    person = find_person(session, who.pseudonym)
    recorded = [e.state for e in history(session, person.person_id)] if person else []
    actor = acting_user(session, username)
    for i, state in enumerate(states):
        if i + offset < len(recorded):
            continue
        day = patient.rt_start - datetime.timedelta(days=21 - 7 * (i + offset))
        record_consent(
            session,
            actor,
            centre_code=patient.centre,
            pseudonym=who.pseudonym,
            state=state,
            event_date=who.shift(day),
            year_of_birth=patient.year_of_birth,
            sex=patient.sex,
            site=patient.site,
            key=key,
            contact=ContactDetails(
                name=f"Demo patient {patient.hospital_id}",
                date_offset_days=who.date_offset_days,
            ),
        )


def _store_outcomes(
    session: Session, patient: SimulatedPatient, key: CentreKey
) -> None:
    from etl.deid.identity import identify
    from instruments.fhir import PSEUDONYM_SYSTEM, PromResponse, SubjectIdentifier
    from instruments.fhir_adverse_event import ToxicityGrading
    from instruments.store import (
        Assessment,
        person_id_for_pseudonym,
        store_prom,
        store_toxicity,
    )

    who = identify(key, patient.hospital_id)
    pseudo = who.pseudonym
    person_id = person_id_for_pseudonym(session, pseudo)
    if person_id is None:
        return
    assert who.date_offset_days is not None
    offset = who.date_offset_days
    subject = SubjectIdentifier(PSEUDONYM_SYSTEM, pseudo)
    rt_end = patient.rt_start + datetime.timedelta(days=42)
    days = {"baseline": -3, "m3": 91, "m6": 182}
    for timepoint, grade in patient.pneumonitis.items():
        # Dates are in the real time frame; Assessment shifts them like the DICOM.
        store_toxicity(
            session,
            Assessment(person_id, timepoint, offset),
            ToxicityGrading(
                resource_id=f"demo-{pseudo}-pneumonitis-{timepoint}",
                subject=subject,
                version="5.0",
                term="Pneumonitis",
                grade=grade,
                assessed_on=rt_end + datetime.timedelta(days=days[timepoint]),
                timepoint=timepoint,
            ),
        )
    for timepoint, answers in patient.qlq_c30.items():
        anchor = patient.rt_start if timepoint == "baseline" else rt_end
        store_prom(
            session,
            Assessment(person_id, timepoint, offset),
            PromResponse(
                resource_id=f"demo-{pseudo}-qlq-c30-{timepoint}",
                instrument="QLQ-C30",
                subject=subject,
                authored=anchor + datetime.timedelta(days=days[timepoint]),
                values=dict(answers),
                timepoint=timepoint,
            ),
        )


def run_demo(
    engine: Engine,
    data_dir: Path,
    *,
    centres: int = 3,
    patients: int = 6,
    seed: int = 1,
    username: str = "admin",
    progress: Progress | None = None,
    accounts_password: str | None = None,
) -> DemoReport:
    """Run the demo on ``engine``; synthetic files go under ``data_dir/demo``.

    With ``accounts_password`` the demo accounts are created too
    (:mod:`rtcohort.demo_accounts`).
    """
    from cohort.simulate import centre_codes, simulate_cohort, write_datasets
    from etl.ingest.run import ImportSummary, run_import
    from omop.database import upgrade
    from omop.engine import session_factory
    from rtcohort.quality_summary import quality_messages
    from rtcohort.wiring import after_consent, after_upgrade, ingest_options

    def tick(step: str, done: int, total: int) -> None:
        if progress is not None:
            progress(step, done, total)

    report = DemoReport()
    factory = session_factory(engine)
    tick("db upgrade", 0, 1)
    upgrade(engine)
    report.messages += after_upgrade(engine)
    tick("db upgrade", 1, 1)

    codes = centre_codes(centres)
    keys = {c: _key(data_dir / "keys", c) for c in codes}
    with factory.begin() as session:
        _ensure_centres(session, codes)

    cohort = simulate_cohort(centres, patients, seed)
    dicom_dir = data_dir / "demo" / "dicom"
    written = write_datasets(
        cohort, dicom_dir, seed, lambda i, n: tick("synthetic DICOM-RT", i, n)
    )
    tick("synthetic DICOM-RT", len(cohort), len(cohort))
    report.patients = written

    with factory.begin() as session:
        for p in written:
            _record_states(session, username, p, keys[p.centre][1],
                           tuple(p.consent_before_import), 0)  # fmt: skip

    summaries: list[ImportSummary] = []
    for i, code in enumerate(codes):
        tick("import", i, len(codes))
        opts = ingest_options(code, keys[code][0], actor=username)
        summaries.append(run_import(factory, [dicom_dir / code], opts))
    tick("import", len(codes), len(codes))

    late = [p for p in written if p.consent_after_import]
    with factory.begin() as session:
        for p in late:
            before = len(p.consent_before_import)
            _record_states(session, username, p, keys[p.centre][1],
                           tuple(p.consent_after_import), before)  # fmt: skip
    for code in sorted({p.centre for p in late}):
        summaries.append(after_consent(engine, code))
    for s in summaries:
        report.datasets_loaded_now += s.loaded
        report.datasets_unchanged += s.unchanged

    _store_all_outcomes(factory, written, keys, tick)

    if accounts_password is not None:
        from rtcohort.demo_accounts import ensure_demo_accounts

        with factory.begin() as session:
            report.accounts = ensure_demo_accounts(
                session, codes, accounts_password, admin=username
            )
    _summarise_and_export(factory, report, codes, username, data_dir)
    report.messages += quality_messages(engine)  # the demo ends with `db quality`
    return report


def _store_all_outcomes(
    factory: sessionmaker[Session],
    written: list[SimulatedPatient],
    keys: dict[str, tuple[Path, CentreKey]],
    tick: Progress,
) -> None:
    """Store the outcomes of every consented patient (one transaction)."""
    with factory.begin() as session:
        for i, p in enumerate(written):
            tick("outcomes", i, len(written))
            if p.consented:
                _store_outcomes(session, p, keys[p.centre][1])
    tick("outcomes", len(written), len(written))


def _summarise_and_export(
    factory: sessionmaker[Session],
    report: DemoReport,
    codes: list[str],
    username: str,
    data_dir: Path,
) -> None:
    """Read the report back and export the dose metrics to ``demo/dose_metrics.csv``."""
    from rtcohort.wiring import CohortExportAccess

    with factory.begin() as session:
        _summarise(session, report, codes, username)
        access = CohortExportAccess(session, username)
        from etl.store.export import dose_metric_table, write_csv

        report.metrics = dose_metric_table(
            session, access=access, metrics=list(DEMO_METRICS)
        )
    out = data_dir / "demo" / "dose_metrics.csv"
    write_csv(out, report.metrics)
    report.csv_path = out


def _summarise(
    session: Session, report: DemoReport, codes: list[str], username: str
) -> None:
    from cohort.consent import person_count
    from cohort.service import acting_user, recruitment_report
    from etl.ingest.quarantine import held_items
    from etl.store.report import datasets_by_centre, mapping_counts
    from instruments.counts import prom_counts
    from instruments.store import read_toxicity

    rec = {
        r.centre: r
        for r in recruitment_report(
            session,
            acting_user(session, username),
            start=datetime.date(1900, 1, 1),
            end=datetime.date(2100, 1, 1),
        )
    }
    loaded = datasets_by_centre(session)
    held_by_centre: Counter[str] = Counter()
    for item in held_items(session):
        held_by_centre[item.centre] += 1
        report.held[item.reason_code] += 1
    proms = prom_counts(session)
    for code in codes:
        r = rec.get(code)
        row = CentreRow(code, loaded=loaded.get(code, 0),
                        held_files=held_by_centre[code])  # fmt: skip
        if r is not None:
            row.enrolled, row.consented, row.declined, row.rate = (
                r.eligible, r.consented, r.declined, r.rate
            )  # fmt: skip
        row.proms = {tp: n for (c, tp), n in proms.items() if c == code}
        report.centres.append(row)
    report.persons = person_count(session)
    report.mapped, report.unmapped = mapping_counts(session)
    tox = read_toxicity(session)
    if not tox.empty:
        for _, t in tox.iterrows():
            report.toxicity[(str(t["timepoint"]), int(t["grade"]))] += 1
