"""Helpers shared by the `cohort` area's command modules.

Patient options, date parsing, one audited transaction per command and the acting
user (``RTCOHORT_USER``, default ``admin``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rtcohort.cli.common import fail, open_engine

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from etl.deid.keys import CentreKey
    from omop.cohort_tables import AppUser

__all__ = [
    "CentreOpt",
    "KeyFileOpt",
    "NamedPatient",
    "PatientArg",
    "PseudonymOpt",
    "current_actor",
    "data_folder",
    "parse_date",
    "session_scope",
    "utc_today",
]

KeyFileOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help="Centre key file (pseudonymises PATIENT)."),
]
PseudonymOpt = Annotated[
    str | None, typer.Option("--pseudonym", help="Pseudonym instead of PATIENT + key.")
]
CentreOpt = Annotated[str, typer.Option("--centre", help="Centre code.")]
PatientArg = Annotated[
    str | None, typer.Argument(help="Hospital patient identifier (with --key-file).")
]


def parse_date(value: str | None, option: str) -> datetime.date | None:
    """Parse an ISO date option (``None`` passes through); a bad one fails."""
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: not a date YYYY-MM-DD")


def utc_today() -> datetime.date:
    """Today's date in UTC."""
    return datetime.datetime.now(datetime.UTC).date()


def data_folder() -> Path:
    """Return the configured data folder."""
    from rtcohort.settings import get_settings

    return get_settings().data_dir


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction; any RTCohortError becomes one line and exit 2 (rolled back)."""
    from omop.engine import session_factory
    from omop.errors import RTCohortError

    engine = open_engine()
    try:
        with session_factory(engine).begin() as session:
            yield session
    except RTCohortError as exc:
        fail(str(exc))
    finally:
        engine.dispose()


def current_actor(session: Session) -> AppUser:
    """Return the acting user (``RTCOHORT_USER``)."""
    from cohort.service import acting_user
    from rtcohort.settings import get_settings

    return acting_user(session, get_settings().user)


class NamedPatient:
    """A patient named on the command line: identity and key if given.

    The identity comes from :mod:`etl.deid.identity`.
    """

    def __init__(
        self,
        patient: str | None,
        pseudonym: str | None,
        centre: str,
        key_file: Path | None,
    ) -> None:
        from etl.deid.identity import identify, known_pseudonym
        from etl.deid.keys import load_key

        self.key: CentreKey | None = None
        if pseudonym is not None:
            if patient is not None:
                fail("give PATIENT (with --key-file) or --pseudonym, not both")
            self.identity = known_pseudonym(pseudonym)
            if key_file is not None:
                self.key = load_key(key_file, centre.strip().upper())
            return
        if patient is None or key_file is None:
            fail("give PATIENT with --key-file, or --pseudonym")
        self.key = load_key(key_file, centre.strip().upper())
        self.identity = identify(self.key, patient)

    @property
    def pseudonym(self) -> str:
        """The patient's pseudonym."""
        return self.identity.pseudonym

    def shift(self, day: datetime.date) -> datetime.date:
        """Move a real date into the patient's pseudonymised time frame."""
        return self.identity.shift(day)
