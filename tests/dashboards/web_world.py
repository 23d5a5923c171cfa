"""A small world for the web app's tests, built through the production writers.

Two centres (HUS, TAYS), one account per role, consented / declined / withdrawn
patients with contact-register entries (date offsets) under centre keys written to a
key folder, on SQLite and PostgreSQL. Committed: the app opens its own sessions.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
from sqlalchemy.orm import Session

BACKENDS = ("sqlite", "postgresql")
PASSWORD = "web-test-password"
ACCOUNTS = {
    "clinician-hus": ("clinician", ["HUS"]),
    "data-manager-hus": ("data_manager", ["HUS"]),
    "viewer-tays": ("viewer", ["TAYS"]),
    "researcher": ("researcher", []),
    "web-admin": ("admin", []),
}
#: The patient with an RT course (so a schedule): the worklist's patient.
RT_PATIENT = "HUS-1001"
# hospital id -> (centre, consent states in order)
PATIENTS = {
    "HUS-1001": ("HUS", ("consented",)),
    "HUS-1002": ("HUS", ("consented",)),
    "HUS-1003": ("HUS", ("declined",)),
    "HUS-1004": ("HUS", ("consented", "withdrawn")),
    "TAYS-2001": ("TAYS", ("consented",)),
}


class _Served(Protocol):
    url: str

    def env(self, monkeypatch: pytest.MonkeyPatch) -> None: ...


def audited_session(
    served: _Served, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Session]:
    """Yield a session on a test database as the served app sees it; roll back.

    The environment is the server's (``served.env``: a :class:`World` or a
    national cohort) and the engine is bound to the audit files, so the page
    functions read and audit as in production.
    """
    from omop.engine import make_engine, session_factory
    from rtcohort.wiring import configure_audit

    served.env(monkeypatch)
    engine = make_engine(served.url)
    configure_audit(engine)
    with session_factory(engine)() as session:
        yield session
        session.rollback()
    engine.dispose()


@dataclass
class World:
    url: str
    data_dir: Path
    key_dir: Path
    pseudonyms: dict[str, str] = field(default_factory=dict)
    person_ids: dict[str, int] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)

    def env(self, monkeypatch: pytest.MonkeyPatch, *, keys: bool = True) -> None:
        """Set what `rtcohort serve` passes to the server (resolved settings)."""
        from rtcohort.cli.serve import server_env
        from rtcohort.settings import get_settings

        monkeypatch.setenv("RTCOHORT_DATA_DIR", str(self.data_dir))
        monkeypatch.setenv("RTCOHORT_DATABASE_URL", self.url)
        monkeypatch.delenv("RTCOHORT_KEY_DIR", raising=False)
        get_settings.cache_clear()
        env = server_env(self.key_dir if keys else None)
        for name, value in env.items():
            if name.startswith("RTCOHORT_"):
                monkeypatch.setenv(name, value)

    def signing_key(self) -> bytes:
        from cohort.invitations import load_signing_key

        return load_signing_key(self.data_dir / "invitation-signing.key")

    def link(
        self,
        hospital_id: str,
        timepoint: str = "m3",
        *,
        now: datetime.datetime | None = None,
    ) -> str:
        from cohort.invitations import issue
        from omop.engine import make_engine, session_factory

        engine = make_engine(self.url)
        try:
            with session_factory(engine).begin() as session:
                token = issue(
                    session,
                    self.signing_key(),
                    self.person_ids[hospital_id],
                    timepoint,
                    now=now,
                ).token
        finally:
            engine.dispose()
        return token


def new_url(request: pytest.FixtureRequest, backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'web.sqlite'}"
    server = request.getfixturevalue("pg_server")
    return str(server.create_database(f"rtcohort_web_{tmp.name.replace('-', '_')}"))


def build_world(url: str, data: Path) -> World:
    from cohort import consent
    from cohort.centres import add_centre
    from cohort.contacts import ContactDetails, store_contact
    from cohort.users import add_user
    from etl.deid.identity import identify
    from etl.deid.keys import load_key, new_key, write_key
    from omop.cdm import Person
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory
    from rtcohort.wiring import after_upgrade

    world = World(url, data, data / "keys")
    engine = make_engine(url)
    upgrade(engine)
    after_upgrade(engine)
    keys = {}
    for code in ("HUS", "TAYS"):
        write_key(new_key(code), world.key_dir / f"{code}.key")
        keys[code] = load_key(world.key_dir / f"{code}.key", code)
    with session_factory(engine).begin() as session:
        sites = {c: add_centre(session, c) for c in keys}
        for name, (role, centres) in ACCOUNTS.items():
            add_user(session, name, role, centres, PASSWORD)
        for hid, (code, states) in PATIENTS.items():
            who = identify(keys[code], hid)
            assert who.date_offset_days is not None
            for n, state in enumerate(states):
                event = consent.record_consent(
                    session, centre=sites[code], pseudonym=who.pseudonym, state=state,
                    event_date=datetime.date(2025, 1, 10 + n), actor="test",
                    year_of_birth=1960, sex="F", site="breast",
                )  # fmt: skip
            person = session.get(Person, event.person_id)
            assert person is not None
            store_contact(
                session, keys[code], person,
                ContactDetails(name=f"Name {hid}", date_offset_days=who.date_offset_days),
            )  # fmt: skip
            world.pseudonyms[hid] = who.pseudonym
            world.person_ids[hid] = event.person_id
            world.offsets[hid] = who.date_offset_days
    _import_course(engine, keys["HUS"], data, RT_PATIENT)
    engine.dispose()
    return world


def _import_course(engine: Any, key: Any, data: Path, hospital_id: str) -> None:
    """Give one patient an RT course (StudyDate 2024-01-01) by the real DICOM import."""
    from etl.ingest.run import ImportOptions, run_import
    from omop.engine import session_factory
    from omop.filestore import FileStore
    from tests.etl.ingest_corpus import write_patient

    folder = data / "dicom-in"
    write_patient(folder, hospital_id, 301)
    options = ImportOptions(
        centre="HUS", key=key, store=FileStore(data / "files"),
        quarantine_dir=data / "quarantine", dvh_samples=20_000,
    )  # fmt: skip
    summary = run_import(session_factory(engine), [folder], options)
    assert summary.loaded == 1, summary
