"""Builders shared by the cohort tests (through the production writers, values known).

RT courses are still EPISODE rows built by hand: their writer is the DICOM loader
(``etl.store.load.load_dataset``); ``tests/test_seams.py`` covers that seam.
"""

from __future__ import annotations

import datetime
import itertools

from sqlalchemy.orm import Session

from cohort import consent
from cohort.centres import add_centre
from cohort.users import add_user
from instruments.fhir import PSEUDONYM_SYSTEM, PromResponse, SubjectIdentifier
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.store import Assessment, store_prom, store_toxicity
from omop.cdm import CareSite, Episode
from omop.cohort_tables import AppUser
from omop.vocab.standard import REGISTRY, RT_COURSE_EPISODE

D = datetime.date
ENROLLED_ON = D(2025, 1, 10)
_KEYS = itertools.count(1)
_SUBJECT = SubjectIdentifier(PSEUDONYM_SYSTEM, "cohort-test")


def centre(session: Session, code: str) -> CareSite:
    return add_centre(session, code)


def user(session: Session, name: str, role: str, centres: list[str]) -> AppUser:
    return add_user(session, name, role, centres, "password-123")


def enrol(
    session: Session,
    site: CareSite,
    pseudonym: str,
    *,
    state: str = "consented",
    day: datetime.date = ENROLLED_ON,
    scopes: list[str] | None = None,
    treatment_site: str = "breast",
) -> int:
    event = consent.record_consent(
        session,
        centre=site,
        pseudonym=pseudonym,
        state=state,
        event_date=day,
        actor="test",
        scopes=scopes,
        year_of_birth=1960,
        sex="F",
        site=treatment_site,
    )
    return event.person_id


def rt_course(
    session: Session, person_id: int, start: datetime.date, end: datetime.date
) -> Episode:
    episode = Episode(
        person_id=person_id,
        episode_concept_id=RT_COURSE_EPISODE,
        episode_start_date=start,
        episode_end_date=end,
        episode_object_concept_id=0,
        episode_type_concept_id=REGISTRY,
    )
    session.add(episode)
    session.flush()
    return episode


def toxicity(
    session: Session, person_id: int, day: datetime.date, timepoint: str = "m3"
) -> None:
    """A CTCAE grading on ``day`` stored by the production writer."""
    grading = ToxicityGrading(
        resource_id=f"ae-{next(_KEYS)}",
        subject=_SUBJECT,
        version="5.0",
        term="Dry mouth",
        grade=1,
        assessed_on=day,
    )
    store_toxicity(session, Assessment(person_id, timepoint), grading)


def prom(session: Session, person_id: int, timepoint: str, day: datetime.date) -> None:
    """A QLQ-C30 completed at noon (UTC) on ``day``, stored by the production writer."""
    answers: dict[int, int | None] = dict.fromkeys(range(1, 29), 1)
    answers[29] = answers[30] = 7
    response = PromResponse(
        resource_id=f"qr-{next(_KEYS)}",
        instrument="QLQ-C30",
        subject=_SUBJECT,
        authored=datetime.datetime.combine(day, datetime.time(12), datetime.UTC),
        values=answers,
        timepoint=timepoint,
    )
    store_prom(session, Assessment(person_id, timepoint), response)
