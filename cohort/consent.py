"""Consent and enrolment: the consent state machine, history, recruitment rate.

States: eligible -> approached -> consented | declined, and consented -> withdrawn.
The first record of a person may be in any state (a patient may be registered already
consented) and creates the PERSON with year of birth and sex. Becoming ``consented``
starts the person's OBSERVATION_PERIOD anew on the consent date; every other state
(eligible, approached, declined, withdrawn) extends it to the event date, so a person
without consent to data use has a period from first contact to the decision
(:mod:`omop.observation_period`). The overall stage, given with a consent to data
use, is stored by :mod:`cohort.stage`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from cohort._time import utcnow
from cohort.consent_states import (
    ALLOWED,
    ConsentScope,
    ConsentState,
    Sex,
    parse_enum,
    parse_scopes,
)
from cohort.errors import (
    ConsentRecordedTwiceError,
    IllegalTransitionError,
    InvalidInputError,
    UnknownPersonError,
)
from cohort.stage import check_stage, record_stage
from etl.deid.identity import check_pseudonym
from etl.errors import PatientIdError
from instruments.shortlists import TreatmentSite  # one list of sites for forms
from omop.cdm import CareSite, ObservationPeriod, Person
from omop.cohort_tables import ConsentEvent, Enrolment
from omop.observation_period import (
    PERIOD_TYPE_CONCEPT_ID,
    extend_observation_period,
    restart_observation_period,
)
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import FEMALE, MALE

__all__ = [
    "ALLOWED",
    "PERIOD_TYPE_CONCEPT_ID",
    "ConsentScope",
    "ConsentState",
    "RecruitmentRow",
    "Sex",
    "TreatmentSite",
    "check_centre_pseudonym",
    "find_person",
    "has_consent",
    "history",
    "parse_scopes",
    "person_count",
    "record_consent",
    "recruitment",
]

_MIN_YEAR = 1900
_GENDER = {Sex.F: FEMALE, Sex.M: MALE}


def find_person(session: Session, pseudonym: str) -> Person | None:
    """Return the PERSON whose ``person_source_value`` is the pseudonym."""
    return session.scalar(select(Person).where(Person.person_source_value == pseudonym))


def person_count(session: Session) -> int:
    """Return the number of PERSON rows (every centre)."""
    return int(session.scalar(select(func.count()).select_from(Person)) or 0)


def latest_period(session: Session, person_id: int) -> ObservationPeriod | None:
    """Return the person's OBSERVATION_PERIOD (one per person)."""
    return session.scalar(
        select(ObservationPeriod)
        .where(ObservationPeriod.person_id == person_id)
        .order_by(ObservationPeriod.observation_period_start_date.desc())
        .limit(1)
    )


def check_centre_pseudonym(centre: CareSite, pseudonym: str) -> None:
    """Refuse a pseudonym without the prefix of the centre it is recorded at.

    Raises
    ------
    InvalidInputError
        ``pseudonym`` is not ``<centre code>-...`` (e.g. a made-up pseudonym of
        another centre).
    """
    try:
        check_pseudonym(pseudonym, str(centre.care_site_source_value))
    except PatientIdError as exc:
        raise InvalidInputError(str(exc)) from None


def _chosen_scopes(
    new: ConsentState, scopes: Iterable[ConsentScope | str] | None
) -> frozenset[ConsentScope]:
    """Scopes a record in state ``new`` covers (none unless consented)."""
    chosen = (
        parse_scopes(scopes)
        if scopes is not None
        else frozenset(ConsentScope)
        if new is ConsentState.CONSENTED
        else frozenset()
    )
    return chosen if new is ConsentState.CONSENTED else frozenset()


def _new_person(  # noqa: PLR0917
    session: Session,
    centre: CareSite,
    pseudonym: str,
    year_of_birth: int | None,
    sex: Sex | str | None,
    event_date: datetime.date,
) -> Person:
    """Add the PERSON of a first consent record (year of birth and sex checked)."""
    if year_of_birth is None or sex is None:
        raise InvalidInputError(
            "first record of a person needs --year-of-birth and --sex"
        )
    if not _MIN_YEAR <= year_of_birth <= event_date.year:
        raise InvalidInputError(f"year of birth {year_of_birth} is implausible")
    the_sex = parse_enum(Sex, str(sex).upper(), "sex")
    person = Person(
        person_source_value=pseudonym,
        gender_concept_id=_GENDER[the_sex],
        gender_source_value=the_sex.value,
        year_of_birth=year_of_birth,
        race_concept_id=0,
        ethnicity_concept_id=0,
        care_site_id=centre.care_site_id,
    )
    session.add(person)
    session.flush()
    return person


def _check_transition(
    enrolment: Enrolment, new: ConsentState, pseudonym: str, event_date: datetime.date
) -> None:
    """Raise unless ``new`` may follow the enrolment's state on ``event_date``."""
    current = ConsentState(enrolment.state)
    if current is new:
        raise ConsentRecordedTwiceError(
            f"person {pseudonym} is already {new.value}; nothing recorded"
        )
    if new not in ALLOWED[current]:
        raise IllegalTransitionError(
            f"consent state {current.value} -> {new.value} is not allowed "
            f"for {pseudonym}"
        )
    if event_date < enrolment.first_record_date:
        raise InvalidInputError(
            f"date {event_date} is before the person's first record"
        )


def _new_enrolment(  # noqa: PLR0917
    session: Session,
    person: Person,
    centre: CareSite,
    site: TreatmentSite | str | None,
    new: ConsentState,
    event_date: datetime.date,
) -> Enrolment:
    """Add the enrolment of a person's first consent record."""
    the_site = parse_enum(TreatmentSite, site or TreatmentSite.OTHER, "site")
    enrolment = Enrolment(
        person_id=person.person_id,
        care_site_id=centre.care_site_id,
        treatment_site=the_site.value,
        protocol_code="default",
        state=new.value,
        scope_data=False,
        scope_proms=False,
        scope_linkage=False,
        first_record_date=event_date,
    )
    session.add(enrolment)
    return enrolment


def record_consent(
    session: Session,
    *,
    centre: CareSite,
    pseudonym: str,
    state: ConsentState | str,
    event_date: datetime.date,
    actor: str,
    version: str | None = None,
    scopes: Iterable[ConsentScope | str] | None = None,
    year_of_birth: int | None = None,
    sex: Sex | str | None = None,
    site: TreatmentSite | str | None = None,
    stage: str | None = None,
) -> ConsentEvent:
    """Record a consent state of a person (creating PERSON and enrolment if new).

    Parameters
    ----------
    centre
        The person's centre.
    pseudonym
        ``person_source_value`` (from :func:`etl.deid.pseudonymise.pseudonym`).
    state
        New state; after the first record it must follow :data:`ALLOWED`.
    event_date
        Date of the consent event (in the patient's pseudonymised time frame).
    scopes
        For ``consented``: what it covers (default data, proms and linkage).
    stage
        Overall stage group (``0``-``IV``, e.g. ``IIIA``), stored on the event
        date (:func:`cohort.stage.record_stage`); only with a consent to data use.

    Raises
    ------
    InvalidInputError
        Year of birth or sex missing with a first record, or malformed values; a
        stage without a consent to data use.
    UnknownPersonError
        When the pseudonym belongs to a person of another centre.
    IllegalTransitionError, ConsentRecordedTwiceError
        When the state may not follow the current one.
    """
    new = parse_enum(ConsentState, state, "consent state")
    chosen = _chosen_scopes(new, scopes)
    check_stage(stage, data_use=ConsentScope.DATA in chosen)
    if version is not None and len(version) > 20:  # noqa: PLR2004
        raise InvalidInputError("consent version: at most 20 characters")
    person = find_person(session, pseudonym)
    enrolment: Enrolment | None = None
    if person is None:
        person = _new_person(session, centre, pseudonym, year_of_birth, sex, event_date)
    else:
        if person.care_site_id != centre.care_site_id:
            raise UnknownPersonError(
                f"person {pseudonym} is not a patient of centre "
                f"{centre.care_site_source_value}"
            )
        enrolment = session.get(Enrolment, person.person_id)
    if enrolment is not None:
        _check_transition(enrolment, new, pseudonym, event_date)
    else:
        enrolment = _new_enrolment(session, person, centre, site, new, event_date)
    enrolment.state = new.value
    if site is not None:
        enrolment.treatment_site = parse_enum(TreatmentSite, site, "site").value
    enrolment.scope_data = ConsentScope.DATA in chosen
    enrolment.scope_proms = ConsentScope.PROMS in chosen
    enrolment.scope_linkage = ConsentScope.LINKAGE in chosen
    if version is not None:
        enrolment.consent_version = version
    if new is ConsentState.CONSENTED:
        enrolment.consented_date = event_date
        restart_observation_period(session, person.person_id, event_date)
        if stage is not None:
            record_stage(session, person.person_id, stage, event_date)
    else:  # before the decision, the decision, or the withdrawal: a contact
        extend_observation_period(
            session, person.person_id, enrolment.first_record_date, event_date
        )
    event = ConsentEvent(
        person_id=person.person_id,
        care_site_id=centre.care_site_id,
        state=new.value,
        state_concept_id=our_concept_id("RTC Consent", new.value),
        consent_version=version,
        event_date=event_date,
        scope_data=enrolment.scope_data,
        scope_proms=enrolment.scope_proms,
        scope_linkage=enrolment.scope_linkage,
        recorded_by=actor,
        recorded_at=utcnow(),
    )
    session.add(event)
    session.flush()
    return event


def has_consent(
    session: Session,
    person_source_value: str,
    scope: ConsentScope | str = ConsentScope.DATA,
) -> bool:
    """Whether the person currently consents to ``scope`` (the ETL's consent check).

    Examples
    --------
    >>> check = lambda pseudonym: has_consent(session, pseudonym)  # doctest: +SKIP
    """
    wanted = parse_enum(ConsentScope, scope, "consent scope")
    column = {
        ConsentScope.DATA: Enrolment.scope_data,
        ConsentScope.PROMS: Enrolment.scope_proms,
        ConsentScope.LINKAGE: Enrolment.scope_linkage,
    }[wanted]
    found = session.scalar(
        select(column)
        .join(Person, Person.person_id == Enrolment.person_id)
        .where(
            Person.person_source_value == person_source_value,
            Enrolment.state == ConsentState.CONSENTED.value,
        )
    )
    return bool(found)


def history(session: Session, person_id: int) -> list[ConsentEvent]:
    """Return the consent events of a person, oldest first."""
    return list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.person_id == person_id)
            .order_by(ConsentEvent.event_date, ConsentEvent.consent_event_id)
        )
    )


@dataclass(frozen=True)
class RecruitmentRow:
    """Recruitment of one centre in a period."""

    care_site_id: int
    eligible: int
    consented: int
    declined: int

    @property
    def rate(self) -> float | None:
        """Consented / eligible (None without eligible persons)."""
        return self.consented / self.eligible if self.eligible else None


def recruitment(
    session: Session,
    start: datetime.date,
    end: datetime.date,
    centre_ids: Iterable[int] | None = None,
) -> list[RecruitmentRow]:
    """Recruitment rate per centre among persons first recorded in ``[start, end]``.

    Every person with a consent record was eligible; of those whose first record
    falls in the period, ``consented`` counts those who ever consented (a later
    withdrawal does not undo recruitment) and ``declined`` those who declined.
    """
    ever_consented = (
        select(ConsentEvent.person_id)
        .where(ConsentEvent.state == ConsentState.CONSENTED.value)
        .distinct()
        .scalar_subquery()
    )
    query = (
        select(
            Enrolment.care_site_id,
            func.count(),
            func.sum(case((Enrolment.person_id.in_(ever_consented), 1), else_=0)),
            func.sum(
                case((Enrolment.state == ConsentState.DECLINED.value, 1), else_=0)
            ),
        )
        .where(
            and_(
                Enrolment.first_record_date >= start, Enrolment.first_record_date <= end
            )
        )
        .group_by(Enrolment.care_site_id)
        .order_by(Enrolment.care_site_id)
    )
    if centre_ids is not None:
        query = query.where(Enrolment.care_site_id.in_(list(centre_ids)))
    return [
        RecruitmentRow(int(c), int(n), int(k or 0), int(d or 0))
        for c, n, k, d in session.execute(query).all()
    ]
