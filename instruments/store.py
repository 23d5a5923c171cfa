"""Write PROM and CTCAE assessments to OMOP and read them back as tidy frames.

Conventions (ARCHITECTURE.md section 3):

* **Timepoint.** One VISIT_OCCURRENCE per person and follow-up timepoint
  (``visit_source_value`` = timepoint code, ``visit_source_concept_id`` = its ``RTC
  Timepoint`` concept, ``visit_concept_id`` 0); every row below points to it.
* **PROM.** One SURVEY_CONDUCT row per completed questionnaire
  (``survey_source_concept_id`` = the instrument concept,
  ``survey_source_identifier`` = the idempotency key, ``timing_concept_id`` = the
  ``RTC Timepoint`` concept and ``timing_source_value`` = its code); each answered
  item an OBSERVATION and each scorable scale and the summary a MEASUREMENT, both
  pointing to the survey through ``*_event_id`` and the field concept
  ``survey_conduct.survey_conduct_id``; type Patient filled survey.
* **Toxicity.** Grade >= 1: a CONDITION_OCCURRENCE for the CTCAE term and an OBSERVATION
  for the grade with ``observation_event_id`` = the condition and the field concept
  ``condition_occurrence.condition_occurrence_id``; grade 0 ("assessed, absent"): the
  OBSERVATION alone. The grade OBSERVATION has ``observation_source_concept_id`` = the
  CTCAE term concept, ``value_as_number`` = grade, ``value_as_concept_id`` = the ``CTCAE
  Grade`` concept and ``qualifier_source_value`` = attribution; type Case Report
  Form.

Our concepts go in ``*_source_concept_id``; ``*_concept_id`` is 0. Every date is shifted
by the patient's date offset (from the centre key, passed in by the caller). Functions
take the session first and never commit: a failing batch leaves nothing behind when the
caller rolls back.

Readers: every other package reads these rows through the ``read_*`` functions here
(:func:`read_survey_timings` and :func:`read_toxicity_dates` take a SQL selection of
person ids, so a schedule over a whole centre stays one query per kind), never with
its own queries.

Idempotency: a questionnaire is identified by its key (the FHIR resource id); storing
the same key again with the same answers changes nothing, with other answers replaces
them.
A grading is identified by person, term, and assessment date; storing it again replaces
the grade and attribution.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import ColumnElement, Select, delete, insert, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from instruments.ctcae import CtcaeVersion, load_catalogue
from instruments.errors import InstrumentError
from instruments.fhir import PromResponse
from instruments.fhir_adverse_event import ToxicityGrading
from instruments.registry import get_instrument
from instruments.scoring import score_responses
from omop.cdm import (
    ConditionOccurrence,
    Measurement,
    Observation,
    Person,
    SurveyConduct,
    VisitOccurrence,
)
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import UnknownConceptError, load_registry, our_concept_id
from omop.vocab.standard import (
    CASE_REPORT_FORM,
    NO_MATCHING_CONCEPT,
    PATIENT_FILLED_SURVEY,
)

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = [
    "CASE_REPORT_FORM",
    "PATIENT_FILLED_SURVEY",
    "Assessment",
    "StoreError",
    "StoreOutcome",
    "SurveyTiming",
    "ToxicityDate",
    "person_id_for_pseudonym",
    "read_latest_scores",
    "read_prom_answers",
    "read_prom_scores",
    "read_survey_timings",
    "read_toxicity",
    "read_toxicity_dates",
    "store_prom",
    "store_toxicity",
]

_NO_CONCEPT = NO_MATCHING_CONCEPT
_SURVEY_FIELD = "survey_conduct.survey_conduct_id"
_CONDITION_FIELD = "condition_occurrence.condition_occurrence_id"
_TIMEPOINT_VOCAB = "RTC Timepoint"
_CHUNK = 2000

#: Persons to read: a SQL selection of person ids (set-based), ids, or None for all.
Persons = Select[Any] | Iterable[int] | None


class StoreError(InstrumentError):
    """An assessment cannot be stored (unknown person, timepoint or concept)."""


class StoreOutcome(StrEnum):
    """What storing one assessment did."""

    CREATED = "created"
    UNCHANGED = "unchanged"
    REPLACED = "replaced"


@dataclass(frozen=True)
class Assessment:
    """Where an assessment belongs: the person, the timepoint and the date offset.

    Attributes
    ----------
    person_id
        PERSON row of the patient (resolved by the caller from the pseudonym).
    timepoint
        Follow-up timepoint code (``baseline``, ``eot``, ``m3``, ...).
    date_offset_days
        The patient's date offset from the pseudonymisation step; added to every date.
    """

    person_id: int
    timepoint: str
    date_offset_days: int = 0

    def shift(self, day: date) -> date:
        """Return ``day`` moved by the date offset."""
        return day + timedelta(days=self.date_offset_days)

    def shift_datetime(self, moment: datetime | date) -> datetime:
        """Return a naive UTC datetime moved by the date offset."""
        if not isinstance(moment, datetime):
            moment = datetime.combine(moment, time(0, 0))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment + timedelta(days=self.date_offset_days)


def person_id_for_pseudonym(session: Session, pseudonym: str) -> int | None:
    """Return the PERSON id whose ``person_source_value`` is ``pseudonym``."""
    found = session.scalar(
        select(Person.person_id).where(Person.person_source_value == pseudonym)
    )
    return int(found) if found is not None else None


def _field(session: Session, name: str) -> int:
    """Field concept id, cached on the session (one query per field and session)."""
    cache: dict[str, int] = session.info.setdefault("rtcohort_field_concepts", {})
    if name not in cache:
        cache[name] = field_concept_id(session, name)
    return cache[name]


def _our_concept(vocabulary: str, code: str) -> int:
    try:
        return our_concept_id(vocabulary, code)
    except UnknownConceptError:
        raise StoreError(f"no concept for {vocabulary} {code!r}") from None


def _visit(session: Session, where: Assessment, day: date) -> int:
    if session.get(Person, where.person_id) is None:
        raise StoreError(f"unknown person_id {where.person_id}")
    source = _our_concept(_TIMEPOINT_VOCAB, where.timepoint)
    found = session.scalar(
        select(VisitOccurrence.visit_occurrence_id).where(
            VisitOccurrence.person_id == where.person_id,
            VisitOccurrence.visit_source_value == where.timepoint,
        )
    )
    if found is not None:
        return int(found)
    visit = VisitOccurrence(
        person_id=where.person_id,
        visit_concept_id=_NO_CONCEPT,
        visit_start_date=day,
        visit_end_date=day,
        visit_type_concept_id=CASE_REPORT_FORM,
        visit_source_value=where.timepoint,
        visit_source_concept_id=source,
    )
    session.add(visit)
    session.flush()
    return int(visit.visit_occurrence_id)


def store_prom(
    session: Session,
    where: Assessment,
    response: PromResponse,
    *,
    collection_method: str = "FHIR",
) -> tuple[int, StoreOutcome]:
    """Store one completed questionnaire: SURVEY_CONDUCT, answers, scores.

    Returns
    -------
    survey_conduct_id, outcome
        The row and whether it was created, left unchanged or replaced.

    Raises
    ------
    StoreError
        Unknown person or timepoint, no completion time, or answers the instrument
        rejects.
    """
    spec = get_instrument(response.instrument).spec
    result = score_responses(spec, response.as_row())
    if not result.valid[0]:
        raise StoreError(f"{response.resource_id}: {result.errors[0]}")
    if response.authored is None:
        raise StoreError(f"{response.resource_id}: no completion time (authored)")
    moment = where.shift_datetime(response.authored)  # naive UTC
    authored = response.authored
    # The date is the patient's local date as sent, not the UTC date.
    day = where.shift(authored.date() if isinstance(authored, datetime) else authored)
    existing = session.scalar(
        select(SurveyConduct).where(
            SurveyConduct.person_id == where.person_id,
            SurveyConduct.survey_source_identifier == response.resource_id,
        )
    )
    answers = {f"q{n}": float(v) for n, v in response.values.items() if v is not None}
    timing = _our_concept(_TIMEPOINT_VOCAB, where.timepoint)
    outcome = StoreOutcome.CREATED
    if existing is not None:
        if (
            _stored_answers(session, existing.survey_conduct_id) == answers
            and existing.timing_source_value == where.timepoint
            and existing.timing_concept_id == timing
            and existing.survey_end_datetime == moment
        ):
            return int(existing.survey_conduct_id), StoreOutcome.UNCHANGED
        _delete_survey(session, existing)
        outcome = StoreOutcome.REPLACED
    visit_id = _visit(session, where, day)
    survey = SurveyConduct(
        person_id=where.person_id,
        survey_concept_id=_NO_CONCEPT,
        survey_start_date=day,
        survey_end_date=day,
        survey_end_datetime=moment,
        assisted_concept_id=_NO_CONCEPT,
        respondent_type_concept_id=_NO_CONCEPT,
        respondent_type_source_value="patient",
        timing_concept_id=timing,
        timing_source_value=where.timepoint,
        collection_method_concept_id=_NO_CONCEPT,
        collection_method_source_value=collection_method,
        survey_source_value=f"EORTC {spec.code}",
        survey_source_concept_id=_our_concept(spec.code, spec.code),
        survey_source_identifier=response.resource_id,
        validated_survey_concept_id=_NO_CONCEPT,
        survey_version_number=spec.version,
        visit_occurrence_id=visit_id,
    )
    session.add(survey)
    session.flush()
    field = _field(session, _SURVEY_FIELD)
    common = {
        "person_id": where.person_id,
        "visit_occurrence_id": visit_id,
    }
    # Core executemany: one statement for the answers, one for the scores.
    rows = [
        common
        | {
            "observation_concept_id": _NO_CONCEPT,
            "observation_date": day,
            "observation_datetime": moment,
            "observation_type_concept_id": PATIENT_FILLED_SURVEY,
            "value_as_number": value,
            "observation_source_value": link_id,
            "observation_source_concept_id": _our_concept(spec.code, link_id),
            "observation_event_id": survey.survey_conduct_id,
            "obs_event_field_concept_id": field,
        }
        for link_id, value in answers.items()
    ]
    if rows:
        session.execute(insert(Observation), rows)
    scored = [
        common
        | {
            "measurement_concept_id": _NO_CONCEPT,
            "measurement_date": day,
            "measurement_datetime": moment,
            "measurement_type_concept_id": PATIENT_FILLED_SURVEY,
            "value_as_number": float(score),
            "measurement_source_value": code,
            "measurement_source_concept_id": _our_concept(spec.code, code),
            "measurement_event_id": survey.survey_conduct_id,
            "meas_event_field_concept_id": field,
        }
        for code, score in zip(result.codes, result.scores[0], strict=True)
        if not math.isnan(score)
    ]
    if scored:
        session.execute(insert(Measurement), scored)
    session.flush()
    return int(survey.survey_conduct_id), outcome


def _stored_answers(session: Session, survey_id: int) -> dict[str, float]:
    rows = session.execute(
        select(Observation.observation_source_value, Observation.value_as_number).where(
            Observation.observation_event_id == survey_id,
            Observation.observation_type_concept_id == PATIENT_FILLED_SURVEY,
        )
    ).all()
    return {str(k): float(v) for k, v in rows if v is not None}


def _delete_survey(session: Session, survey: SurveyConduct) -> None:
    sid = survey.survey_conduct_id
    field = _field(session, _SURVEY_FIELD)
    session.execute(
        delete(Observation).where(
            Observation.observation_event_id == sid,
            Observation.obs_event_field_concept_id == field,
        )
    )
    session.execute(
        delete(Measurement).where(
            Measurement.measurement_event_id == sid,
            Measurement.meas_event_field_concept_id == field,
        )
    )
    session.delete(survey)
    session.flush()


def store_toxicity(
    session: Session, where: Assessment, grading: ToxicityGrading
) -> tuple[int, StoreOutcome]:
    """Store one CTCAE grading; return the grade OBSERVATION id and the outcome.

    Raises
    ------
    StoreError
        Unknown person or timepoint.
    """
    version = CtcaeVersion.parse(grading.version)
    term_concept = _our_concept(f"CTCAE v{version.value}", grading.meddra_code)
    day = where.shift(grading.assessed_on)
    attribution = str(grading.attribution) if grading.attribution else None
    existing = session.scalar(
        select(Observation).where(
            Observation.person_id == where.person_id,
            Observation.observation_source_concept_id == term_concept,
            Observation.observation_date == day,
            Observation.observation_type_concept_id == CASE_REPORT_FORM,
        )
    )
    outcome = StoreOutcome.CREATED
    if existing is not None:
        if (
            existing.value_as_number == grading.grade
            and existing.qualifier_source_value == attribution
        ):
            return int(existing.observation_id), StoreOutcome.UNCHANGED
        if existing.observation_event_id is not None:
            session.execute(
                delete(ConditionOccurrence).where(
                    ConditionOccurrence.condition_occurrence_id
                    == existing.observation_event_id
                )
            )
        session.delete(existing)
        session.flush()
        outcome = StoreOutcome.REPLACED
    visit_id = _visit(session, where, day)
    event_id: int | None = None
    field: int | None = None
    if grading.grade > 0:
        condition = ConditionOccurrence(
            person_id=where.person_id,
            condition_concept_id=_NO_CONCEPT,
            condition_start_date=day,
            condition_type_concept_id=CASE_REPORT_FORM,
            condition_source_value=grading.meddra_code,
            condition_source_concept_id=term_concept,
            visit_occurrence_id=visit_id,
        )
        session.add(condition)
        session.flush()
        event_id = int(condition.condition_occurrence_id)
        field = _field(session, _CONDITION_FIELD)
    observation = Observation(
        person_id=where.person_id,
        observation_concept_id=_NO_CONCEPT,
        observation_date=day,
        observation_type_concept_id=CASE_REPORT_FORM,
        value_as_number=float(grading.grade),
        value_as_concept_id=_our_concept("CTCAE Grade", str(grading.grade)),
        value_source_value=str(grading.grade),
        qualifier_source_value=attribution,
        observation_source_value=f"CTCAE v{version.value} {grading.meddra_code}",
        observation_source_concept_id=term_concept,
        visit_occurrence_id=visit_id,
        observation_event_id=event_id,
        obs_event_field_concept_id=field,
    )
    session.add(observation)
    session.flush()
    return int(observation.observation_id), outcome


def _frame(rows: Iterable[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(rows), columns=columns)


def read_prom_scores(
    session: Session, person_ids: Iterable[int] | None = None
) -> pd.DataFrame:
    """Return one row per stored questionnaire with its scores (NaN if not scorable).

    Columns: ``person_id, survey_conduct_id, timepoint, completed_on, key, instrument``
    and the score codes of the instrument (QLQ-C30: ``QL2`` ... ``SUMMARY``).
    """
    spec = get_instrument("QLQ-C30").spec
    query = select(SurveyConduct)
    if person_ids is not None:
        query = query.where(SurveyConduct.person_id.in_(list(person_ids)))
    surveys = session.scalars(query.order_by(SurveyConduct.survey_conduct_id)).all()
    field = _field(session, _SURVEY_FIELD) if surveys else 0
    rows = []
    for survey in surveys:
        scores = dict.fromkeys(spec.output_codes, math.nan)
        for code, value in session.execute(
            select(
                Measurement.measurement_source_value, Measurement.value_as_number
            ).where(
                Measurement.measurement_event_id == survey.survey_conduct_id,
                Measurement.meas_event_field_concept_id == field,
            )
        ).all():
            if value is not None:
                scores[str(code)] = float(value)
        rows.append(
            {
                "person_id": survey.person_id,
                "survey_conduct_id": survey.survey_conduct_id,
                "timepoint": _timepoint(
                    survey.timing_concept_id, survey.timing_source_value
                ),
                "completed_on": survey.survey_end_date,
                "key": survey.survey_source_identifier,
                "instrument": (survey.survey_source_value or "").removeprefix("EORTC "),
                **scores,
            }
        )
    columns = ["person_id", "survey_conduct_id", "timepoint", "completed_on", "key"]
    return _frame(rows, [*columns, "instrument", *spec.output_codes])


def read_prom_answers(
    session: Session, person_ids: Iterable[int] | None = None
) -> pd.DataFrame:
    """Return one row per stored answer.

    Columns: ``person_id, survey_conduct_id, item, value``.
    """
    query = select(
        Observation.person_id,
        Observation.observation_event_id,
        Observation.observation_source_value,
        Observation.value_as_number,
    ).where(
        Observation.observation_type_concept_id == PATIENT_FILLED_SURVEY,
        Observation.obs_event_field_concept_id == _field(session, _SURVEY_FIELD),
    )
    if person_ids is not None:
        query = query.where(Observation.person_id.in_(list(person_ids)))
    rows = [
        {"person_id": p, "survey_conduct_id": s, "item": i, "value": v}
        for p, s, i, v in session.execute(query.order_by(Observation.observation_id))
    ]
    return _frame(rows, ["person_id", "survey_conduct_id", "item", "value"])


def read_toxicity(
    session: Session, person_ids: Iterable[int] | None = None
) -> pd.DataFrame:
    """Return one row per stored CTCAE grading.

    Columns: ``person_id, timepoint, assessed_on, ctcae_version, term, meddra_code,
    grade, attribution, condition_occurrence_id`` (dates as stored, i.e. shifted).
    """
    by_id = {v: k for k, v in load_registry().items()}
    query = (
        select(Observation, VisitOccurrence.visit_source_value)
        .join(
            VisitOccurrence,
            VisitOccurrence.visit_occurrence_id == Observation.visit_occurrence_id,
            isouter=True,
        )
        .where(Observation.observation_type_concept_id == CASE_REPORT_FORM)
    )
    if person_ids is not None:
        query = query.where(Observation.person_id.in_(list(person_ids)))
    rows = []
    for obs, timepoint in session.execute(query.order_by(Observation.observation_id)):
        vocabulary, code = by_id.get(obs.observation_source_concept_id or -1, ("", ""))
        if not vocabulary.startswith("CTCAE v"):
            continue
        version = vocabulary.removeprefix("CTCAE v")
        rows.append(
            {
                "person_id": obs.person_id,
                "timepoint": timepoint,
                "assessed_on": obs.observation_date,
                "ctcae_version": version,
                "term": load_catalogue(version).term(code).term,
                "meddra_code": code,
                "grade": int(obs.value_as_number or 0),
                "attribution": obs.qualifier_source_value,
                "condition_occurrence_id": obs.observation_event_id,
            }
        )
    columns = [
        "person_id",
        "timepoint",
        "assessed_on",
        "ctcae_version",
        "term",
        "meddra_code",
        "grade",
        "attribution",
        "condition_occurrence_id",
    ]
    return _frame(rows, columns)


@cache
def _timepoint_codes() -> dict[int, str]:
    return {
        concept_id: code
        for (vocabulary, code), concept_id in load_registry().items()
        if vocabulary == _TIMEPOINT_VOCAB
    }


def _timepoint(concept_id: int | None, source_value: str | None) -> str | None:
    """Timepoint code of a survey: its timing concept, else the source value.

    Rows stored before the timing concept was written hold the code alone.
    """
    return _timepoint_codes().get(int(concept_id or 0)) or source_value


def _where_persons(
    column: InstrumentedAttribute[int], persons: Persons
) -> list[list[ColumnElement[bool]]]:
    """Conditions selecting ``persons``: one list per query to run (chunks of ids)."""
    if persons is None:
        return [[]]
    if isinstance(persons, Select):
        return [[column.in_(persons)]]
    ids = sorted(set(persons))
    return [
        [column.in_(ids[start : start + _CHUNK])]
        for start in range(0, len(ids), _CHUNK)
    ]


class SurveyTiming(NamedTuple):
    """When a stored questionnaire was completed, and for which timepoint."""

    person_id: int
    timepoint: str | None
    completed_at: datetime | None  # naive UTC, shifted by the date offset


def read_survey_timings(
    session: Session, persons: Persons = None
) -> list[SurveyTiming]:
    """Return the timepoint and completion time of every stored questionnaire.

    Parameters
    ----------
    persons
        A SQL selection of person ids (one query, set-based), a collection of ids, or
        None for everyone.

    Examples
    --------
    >>> read_survey_timings(session, [person_id])  # doctest: +SKIP
    [SurveyTiming(person_id=1, timepoint='m3', completed_at=datetime(...))]
    """
    out: list[SurveyTiming] = []
    for where in _where_persons(SurveyConduct.person_id, persons):
        rows = session.execute(
            select(
                SurveyConduct.person_id,
                SurveyConduct.timing_concept_id,
                SurveyConduct.timing_source_value,
                SurveyConduct.survey_end_datetime,
            ).where(*where)
        )
        out += [
            SurveyTiming(int(p), _timepoint(c, s), end) for p, c, s, end in rows.all()
        ]
    return out


class ToxicityDate(NamedTuple):
    """The date (shifted) of one stored CTCAE grading."""

    person_id: int
    assessed_on: date


def read_toxicity_dates(
    session: Session, persons: Persons = None
) -> list[ToxicityDate]:
    """Return the assessment date of every stored CTCAE grading (grade 0 included).

    ``persons`` as in :func:`read_survey_timings`. The grade OBSERVATION of type
    Case Report Form marks an assessment; :func:`read_toxicity` gives the grades.
    """
    out: list[ToxicityDate] = []
    for where in _where_persons(Observation.person_id, persons):
        rows = session.execute(
            select(Observation.person_id, Observation.observation_date).where(
                Observation.observation_type_concept_id == CASE_REPORT_FORM, *where
            )
        )
        out += [ToxicityDate(int(p), day) for p, day in rows.all()]
    return out


def read_latest_scores(
    session: Session, persons: Persons, code: str, *, instrument: str = "QLQ-C30"
) -> dict[tuple[int, str], float]:
    """Return one score per (person, timepoint); the last completed questionnaire wins.

    Parameters
    ----------
    persons
        As in :func:`read_survey_timings`.
    code
        Score code of the instrument (QLQ-C30: ``QL2``, ``PF2``, ..., ``SUMMARY``).
    instrument
        Instrument code.

    Returns
    -------
    dict
        ``{(person_id, timepoint): score}``; unscorable scales are absent.
    """
    field = _field(session, _SURVEY_FIELD)
    concept = _our_concept(instrument, code)
    latest: dict[tuple[int, str], float] = {}
    for where in _where_persons(SurveyConduct.person_id, persons):
        query = (
            select(
                SurveyConduct.person_id,
                SurveyConduct.timing_concept_id,
                SurveyConduct.timing_source_value,
                Measurement.value_as_number,
            )
            .join(
                Measurement,
                (Measurement.measurement_event_id == SurveyConduct.survey_conduct_id)
                & (Measurement.meas_event_field_concept_id == field)
                & (Measurement.measurement_source_concept_id == concept),
            )
            .where(
                SurveyConduct.survey_source_concept_id
                == _our_concept(instrument, instrument),
                Measurement.value_as_number.is_not(None),
                *where,
            )
            .order_by(
                SurveyConduct.survey_end_date,
                SurveyConduct.survey_end_datetime,
                SurveyConduct.survey_conduct_id,
            )
        )
        for pid, timing, source, value in session.execute(query):
            timepoint = _timepoint(timing, source)
            if value is not None and timepoint is not None:
                latest[(int(pid), timepoint)] = float(value)
    return latest
