"""The steps of ``rtcohort demo``, each through the path a centre uses.

- :func:`simulate_cohort`: the national simulator's FHIR, consent and naming files
  (``rtcohort simulate --dicom``; the DICOM-RT is written by
  :class:`rtcohort.demo_pipeline.DicomWriter`);
- :func:`deliver`: a C-STORE receiver with the centre key on loopback
  (``rtcohort receive --deid``), fed by a sending SCU as a TPS would
  (:func:`etl.arrive.sender.send_files`);
- :func:`record_consents`: the centre's consent list through
  :func:`cohort.service.record_consent` (``rtcohort consent record``);
- :func:`import_mapping`: the centres' naming rules (``rtcohort mapping import``);
- :func:`import_outcomes`: toxicity and PROMs through
  :mod:`cohort.clinical_import` (``rtcohort toxicity import`` / ``prom import``);
- :func:`record_followup_events`: deaths and withdrawals (without erasure) through
  :mod:`cohort.service` (``rtcohort followup record --death``, ``consent withdraw``).

Every step is idempotent: a re-run finds what is there and adds nothing.
"""

from __future__ import annotations

import csv
import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from cohort.simulate.national import NationalCohort
from etl.arrive.sender import SendSummary
from etl.deid.keys import CentreKey

__all__ = [
    "DEMO_CALLING_AE",
    "DEMO_RECEIVER_AE",
    "SEND_BATCH",
    "Delivery",
    "deliver",
    "import_mapping",
    "import_outcomes",
    "record_consents",
    "record_followup_events",
    "simulate_cohort",
    "workers_for",
]

#: The AE titles of the demo's "TPS" (sender) and of the receiver.
DEMO_CALLING_AE = "DEMO-TPS"
DEMO_RECEIVER_AE = "RTCOHORT"

#: Processes of the demo's DICOM writer and import (at most two: a 2-core machine).
WORKERS = min(2, os.cpu_count() or 1)

#: Fewer patients than this are written and imported in-process (starting worker
#: processes costs more than it saves).
_POOL_FROM = 12


def workers_for(patients: int) -> int:
    """Return the processes to use for ``patients`` patients."""
    return WORKERS if patients >= _POOL_FROM else 1


#: Parallel associations of the demo's sender. pynetdicom waits by polling (two
#: threads per association on each side, waking every millisecond): one centre of
#: 2,525 files took 23-24 s and 25 s of CPU with two, 25-27 s and 28-30 s with four.
SEND_ASSOCIATIONS = 2

#: Patients the demo sends at a time: a centre is sent in batches as its patients
#: are written, so only the last batch is left to send when the writer ends.
SEND_BATCH = 10

#: Seconds the demo's sender and receiver wait for a message before giving up (a
#: C-STORE pseudonymises and fsyncs: slow on a loaded machine), and the new
#: associations a sender may open after a lost one. Full-size runs lost an
#: association now and then (a C-STORE request never answered, pynetdicom 3.0.4,
#: four associations in parallel) and stopped with "aborted the association".
SEND_TIMEOUT_S = 30.0
SEND_RETRIES = 5


def simulate_cohort(
    centres: int, patients: int, seed: int, out_dir: Path
) -> NationalCohort:
    """Simulate the national cohort; write its centres' FHIR, consent and rules.

    The DICOM-RT is written by :class:`rtcohort.demo_pipeline.DicomWriter`.
    """
    from cohort.simulate.files import write_centre_files
    from cohort.simulate.national import simulate_national
    from cohort.simulate.params import SimulationParams

    params = SimulationParams(centres=centres, patients=patients, seed=seed)
    cohort = simulate_national(params)
    write_centre_files(cohort, out_dir)
    return cohort


@dataclass(frozen=True)
class Delivery:
    """What one centre's TPS sent to the receiver and where it was filed."""

    centre: str
    inbox: Path
    sent: SendSummary


def deliver(
    centre: str,
    folders: Sequence[Path],
    inbox: Path,
    key: CentreKey,
) -> Delivery:
    """Send every file under ``folders`` to a receiver on loopback filing ``inbox``.

    The receiver pseudonymises with the centre ``key`` before anything is written
    (``rtcohort receive --deid``); it listens on a free loopback port for as long as
    the sending takes. ``folders`` are a centre's ``dicom`` folder or some of its
    patient folders (the demo sends a centre in batches as they are written).
    """
    from etl.arrive.inbox import Inbox
    from etl.arrive.receiver import Receiver
    from etl.arrive.sender import send_files

    files = sorted(p for f in folders for p in f.rglob("*.dcm") if p.is_file())
    node = Receiver(
        Inbox(inbox),
        ae_title=DEMO_RECEIVER_AE,
        port=0,
        allowed_callers=[DEMO_CALLING_AE],
        key=key,
        timeout_s=SEND_TIMEOUT_S,
    )
    node.start()
    try:
        sent = send_files(
            files, host="127.0.0.1", port=node.port, called_ae=DEMO_RECEIVER_AE,
            calling_ae=DEMO_CALLING_AE, associations=SEND_ASSOCIATIONS,
            timeout_s=SEND_TIMEOUT_S, retries=SEND_RETRIES,
        )  # fmt: skip
    finally:
        node.stop()
    return Delivery(centre, inbox, sent)


def record_consents(
    session: Session,
    username: str,
    centre: str,
    key: CentreKey,
    consent_csv: Path,
) -> int:
    """Record each patient's consent course (approached, then the decision).

    Reads the centre's ``consent.csv`` (hospital_id, year_of_birth, sex, site,
    state, date and, optional, the stage recorded with the consent); the states a
    person already has are not recorded again. Returns the number of states
    recorded.
    """
    from cohort.consent import find_person, history
    from cohort.contacts import ContactDetails
    from cohort.service import acting_user, record_consent
    from etl.deid.identity import identify

    actor = acting_user(session, username)
    recorded = 0
    with consent_csv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        who = identify(key, row["hospital_id"])
        person = find_person(session, who.pseudonym)
        done = len(history(session, person.person_id)) if person else 0
        decided = datetime.date.fromisoformat(row["date"])
        course = (("approached", decided - datetime.timedelta(days=7)),
                  (row["state"], decided))  # fmt: skip
        for state, day in course[done:]:
            record_consent(
                session, actor, centre_code=centre, pseudonym=who.pseudonym,
                state=state, event_date=who.shift(day),
                year_of_birth=int(row["year_of_birth"]), sex=row["sex"],
                site=row["site"], key=key,
                stage=(row.get("stage") or None) if state == "consented" else None,
                contact=ContactDetails(
                    name=f"Demo patient {row['hospital_id']}",
                    date_offset_days=who.date_offset_days,
                ),
            )  # fmt: skip
            recorded += 1
    return recorded


def import_mapping(session: Session, username: str, rules_csv: Path) -> int | None:
    """Import the centres' naming rules once; return the new version (None: there)."""
    from cohort.operations import import_mapping_rules
    from etl.mapping.naming import imported_version, parse_rules_csv

    text = rules_csv.read_text(encoding="utf-8")
    if imported_version(session, text) is not None:
        return None
    rules = parse_rules_csv(text, str(rules_csv))
    done = import_mapping_rules(
        session, username, rules, source=rules_csv.name, text=text
    )
    return done.version


def import_outcomes(
    session: Session, username: str, centre: str, key: CentreKey, folder: Path
) -> dict[str, int]:
    """Import the centre's ``toxicity.json`` and ``proms.json`` (FHIR Bundles).

    Returns the records per outcome (``stored``, ``unchanged``...) of both files.
    """
    from cohort.clinical_import import import_proms, import_toxicity

    out: dict[str, int] = {}
    for run, name in ((import_toxicity, "toxicity.json"), (import_proms, "proms.json")):
        path = folder / name
        if not path.exists():
            continue
        summary = run(session, key, centre, path, actor=username)
        for outcome, n in summary.outcomes.items():
            out[outcome] = out.get(outcome, 0) + n
    return out


def record_followup_events(
    session: Session, username: str, centre: str, key: CentreKey, followup_csv: Path
) -> dict[str, int]:
    """Record the centre's deaths and withdrawals (``followup.csv``), once each.

    A withdrawal keeps the person's data (no erasure). Dates are shifted with the
    centre key, as the CLI does. Returns the events recorded now by kind.
    """
    from cohort.consent import find_person, history
    from cohort.service import acting_user, record_followup, withdraw
    from etl.deid.identity import identify
    from omop.cdm import Death

    actor = acting_user(session, username)
    recorded = {"death": 0, "withdrawal": 0}
    with followup_csv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        who = identify(key, row["hospital_id"])
        person = find_person(session, who.pseudonym)
        if person is None:
            continue  # not enrolled here (nothing to follow)
        day = who.shift(datetime.date.fromisoformat(row["date"]))
        if row["event"] == "death":
            if session.get(Death, person.person_id) is None:
                record_followup(
                    session, actor, centre_code=centre, pseudonym=who.pseudonym,
                    death=day,
                )  # fmt: skip
                recorded["death"] += 1
        elif row["event"] == "withdrawal":
            states = {e.state for e in history(session, person.person_id)}
            if "withdrawn" not in states:
                withdraw(
                    session, actor, centre_code=centre, pseudonym=who.pseudonym,
                    event_date=day, erase=False,
                )  # fmt: skip
                recorded["withdrawal"] += 1
        else:
            raise ValueError(
                f"{followup_csv}: event {row['event']!r}: expected death or withdrawal"
            )
    return recorded
