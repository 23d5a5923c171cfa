"""Builders shared by the cohort tests (rows inserted by hand, values known)."""

from __future__ import annotations

import datetime

from sqlalchemy.orm import Session

from cohort import consent
from cohort.centres import add_centre
from cohort.users import add_user
from omop.cdm import CareSite, Episode, Observation, SurveyConduct
from omop.cohort_tables import AppUser
from omop.vocab.registry import our_concept_id

D = datetime.date
ENROLLED_ON = D(2025, 1, 10)


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
        episode_concept_id=32940,
        episode_start_date=start,
        episode_end_date=end,
        episode_object_concept_id=0,
        episode_type_concept_id=32879,
    )
    session.add(episode)
    session.flush()
    return episode


def toxicity(session: Session, person_id: int, day: datetime.date) -> None:
    session.add(
        Observation(
            person_id=person_id,
            observation_concept_id=0,
            observation_date=day,
            observation_type_concept_id=32809,
        )
    )
    session.flush()


def prom(session: Session, person_id: int, timepoint: str, day: datetime.date) -> None:
    session.add(
        SurveyConduct(
            person_id=person_id,
            survey_concept_id=0,
            survey_end_datetime=datetime.datetime.combine(day, datetime.time(12)),
            assisted_concept_id=0,
            respondent_type_concept_id=0,
            timing_concept_id=our_concept_id("RTC Timepoint", timepoint),
            collection_method_concept_id=0,
            survey_source_concept_id=0,
            validated_survey_concept_id=0,
        )
    )
    session.flush()
