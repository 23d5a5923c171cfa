"""The overall stage recorded with consent: stored, replaced, refused, erased.

Through the production writers (``cohort.service.record_consent``,
``cohort.stage.record_stage``, ``cohort.service.withdraw``) on both backends.
"""

from __future__ import annotations

import datetime

import pytest
from cohort_helpers import centre, user
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import service
from cohort.errors import InvalidInputError, UnknownUserError
from cohort.stage import parse_stage, record_stage, stage_group, stage_query, stages
from cohort.users import get_user
from omop.cdm import Measurement, ObservationPeriod
from omop.vocab.registry import our_concept_id

DAY = datetime.date(2025, 3, 3)
D5 = DAY + datetime.timedelta(days=5)


def _consent(session: Session, pseudo: str, **extra: object) -> int:
    try:
        manager = get_user(session, "stage-dm")
    except UnknownUserError:
        manager = user(session, "stage-dm", "data_manager", ["CST"])
    values: dict[str, object] = {
        "state": "consented", "year_of_birth": 1955, "sex": "M", "site": "lung",
    }  # fmt: skip
    values.update(extra)
    event = service.record_consent(
        session,
        manager,
        centre_code="CST",
        pseudonym=pseudo,
        event_date=DAY,
        **values,  # type: ignore[arg-type]
    )
    return int(event.person_id)


def _rows(session: Session, person_id: int) -> list[Measurement]:
    concepts = [our_concept_id("RTC Stage", g) for g in ("0", "I", "II", "III", "IV")]
    return list(
        session.scalars(
            select(Measurement).where(
                Measurement.person_id == person_id,
                Measurement.measurement_source_concept_id.in_(concepts),
            )
        )
    )


@pytest.mark.parametrize(
    ("given", "group", "kept"),
    [("IIIA", "III", "IIIA"), ("iv", "IV", "IV"), ("0is", "0", "0IS"),
     ("Stage IB2", "I", "IB2"), ("II", "II", "II")],
)  # fmt: skip
def test_parse_stage_keeps_the_group_and_the_given_value(
    given: str, group: str, kept: str
) -> None:
    assert parse_stage(given) == (group, kept)


@pytest.mark.parametrize("bad", ["V", "IIID", "3", "", "IIII", "T2N0"])
def test_parse_stage_refuses_what_is_not_a_stage_group(bad: str) -> None:
    with pytest.raises(InvalidInputError, match=r"stage: .*allowed: 0, I, II, III"):
        parse_stage(bad)


def test_stage_recorded_with_consent_then_replaced(session: Session) -> None:
    centre(session, "CST")
    pid = _consent(session, "CST-1", stage="IIIA")
    other = _consent(session, "CST-2")
    (row,) = _rows(session, pid)
    assert row.measurement_source_concept_id == our_concept_id("RTC Stage", "III")
    assert (row.measurement_concept_id, row.value_source_value) == (0, "IIIA")
    assert row.measurement_type_concept_id == 32809  # case report form
    assert row.measurement_date == DAY
    period = session.scalars(
        select(ObservationPeriod).where(ObservationPeriod.person_id == pid)
    ).one()
    assert period.observation_period_start_date <= row.measurement_date
    assert stages(session, [pid, other]) == {pid: "III"}
    # recording again replaces: one row, the new value
    assert record_stage(session, pid, "IB", D5) == "I"
    (row,) = _rows(session, pid)
    assert (row.value_source_value, row.measurement_date) == ("IB", D5)
    assert stages(session, [pid, other]) == {pid: "I"}
    assert stages(session, []) == {}
    # the set-based reader (the case-mix table joins it) says the same
    q = stage_query()
    joined = session.execute(select(q.c.person_id, q.c.concept)).all()
    assert {p: stage_group(c) for p, c in joined} == {pid: "I"}


def test_bad_stage_is_refused_naming_the_field(session: Session) -> None:
    centre(session, "CST")
    with pytest.raises(InvalidInputError, match=r"stage: 'V' .*0, I, II, III, IV"):
        _consent(session, "CST-3", stage="V")
    with pytest.raises(InvalidInputError, match="stage: recorded only with a consent"):
        _consent(session, "CST-4", state="approached", stage="II")
    with pytest.raises(InvalidInputError, match="stage: recorded only with a consent"):
        _consent(session, "CST-5", stage="II", scopes=["proms"])
    assert _rows(session, _consent(session, "CST-6")) == []


def test_withdrawal_with_erasure_removes_the_stage(session: Session) -> None:
    centre(session, "CST")
    gone = _consent(session, "CST-7", stage="IV")
    kept = _consent(session, "CST-8", stage="II")
    result = service.withdraw(
        session,
        get_user(session, "admin"),
        centre_code="CST",
        pseudonym="CST-7",
        event_date=DAY + datetime.timedelta(days=30),
        erase=True,
    )
    assert result.erased
    assert result.report is not None
    assert result.report.rows_by_table.get("measurement", 0) >= 1
    assert _rows(session, gone) == []
    assert stages(session, [gone, kept]) == {kept: "II"}
