"""The patient x required structure matrix against an independent computation.

On the simulated national cohort (national_world.py: written by the production
writers, both backends) with, added through the production writers, a centre with
no patients and its clinician, a withdrawn lung patient and a centre rule that maps
a second ROI to ``Lungs`` (re-mapped by :func:`etl.mapping.remap.remap_loaded`, so
some patients have it more than once), :func:`queries_quality.structure_matrix` is
compared with the matrix computed in Python from every DVH row; the audit record
lists exactly the persons shown.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pytest
from national_world import National
from sqlalchemy import select
from sqlalchemy.orm import Session
from web_world import PASSWORD, audited_session

from cohort.benchmark import queries_quality
from cohort.benchmark.queries_quality import REQUIRED_STRUCTURES, STATUS
from cohort.centres import add_centre, centre_codes
from cohort.consent import record_consent
from cohort.permissions import Action, scope_for
from cohort.users import add_user, get_user
from etl.mapping.naming import MatchKind, Rule, RuleSet, current_rules
from etl.mapping.remap import remap_loaded
from omop.cdm import CareSite, Person
from omop.cohort_tables import AuditPerson, AuditRecord, Enrolment
from omop.ingest_tables import Dvh, IngestDataset

SITE = "lung"


@pytest.fixture
def db(national: National, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    yield from audited_session(national, monkeypatch)


def _expected(session: Session, centre_ids: set[int] | None) -> pd.DataFrame:
    """The matrix from every enrolment and DVH row, computed in Python."""
    names = REQUIRED_STRUCTURES[SITE]
    centres = set(centre_codes(session))
    shown: list[tuple[str, int]] = []
    counted: set[int] = set()
    for pid, who, state, site, person_centre, enrolled_at in session.execute(
        select(
            Person.person_id, Person.person_source_value, Enrolment.state,
            Enrolment.treatment_site, Person.care_site_id, Enrolment.care_site_id,
        ).join(Enrolment, Enrolment.person_id == Person.person_id)
    ):  # fmt: skip
        if state != "consented" or site != SITE:
            continue
        if centre_ids is None or person_centre in centre_ids:
            shown.append((str(who), int(pid)))
        if enrolled_at in (centre_ids or centres):
            counted.add(int(pid))
    rois: defaultdict[tuple[int, str, str], set[int]] = defaultdict(set)
    for pid, name, roi, structure_set in session.execute(
        select(
            Dvh.person_id, Dvh.tg263_name, Dvh.roi_number,
            IngestDataset.structure_set_sop_instance_uid,
        ).join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
    ):  # fmt: skip
        if pid in counted and name in names and roi is not None:
            rois[(pid, name, structure_set)].add(roi)
    most: defaultdict[tuple[int, str], int] = defaultdict(int)
    for (pid, name, _), numbers in rois.items():
        most[(pid, name)] = max(most[(pid, name)], len(numbers))
    rows = [
        {"pseudonym": who, **{n: STATUS[min(most[(pid, n)], 2)] for n in names}}
        for who, pid in sorted(shown)
    ]
    return pd.DataFrame(rows, columns=["pseudonym", *names])


def _last_audit(session: Session) -> tuple[AuditRecord, set[int]]:
    record = session.scalars(
        select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)
    ).one()
    persons = session.scalars(
        select(AuditPerson.person_id).where(AuditPerson.record_id == record.record_id)
    ).all()
    return record, set(persons)


def _ids(session: Session, pseudonyms: Any) -> set[int]:
    return set(
        session.scalars(
            select(Person.person_id).where(
                Person.person_source_value.in_(list(pseudonyms))
            )
        )
    )


def _prepare(session: Session) -> tuple[str, str]:
    """Add an empty centre, withdraw a patient, map a second ROI to Lungs."""
    add_centre(session, "EMPTY", "No patients")
    add_user(session, "clinician-empty", "clinician", ["EMPTY"], PASSWORD)
    who, centre_id = session.execute(
        select(Person.person_source_value, Person.care_site_id)
        .join(Enrolment, Enrolment.person_id == Person.person_id)
        .join(Dvh, Dvh.person_id == Person.person_id)
        .where(Enrolment.state == "consented", Enrolment.treatment_site == SITE)
        .order_by(Person.person_id)
        .limit(1)
    ).one()
    record_consent(
        session, centre=session.get_one(CareSite, centre_id), pseudonym=who,
        state="withdrawn", event_date=datetime.date(2025, 6, 1), actor="test",
    )  # fmt: skip
    code = centre_codes(session)[centre_id]
    extra = Rule(code, "Lung_L", MatchKind.EXACT, "Lungs")
    report = remap_loaded(
        session, RuleSet([*current_rules(session).rules, extra]), centres=[code]
    )
    assert report.structures_changed > 0
    session.flush()
    return str(who), code


def test_matrix_equals_the_python_computation(db: Session) -> None:
    withdrawn, _ = _prepare(db)
    names = REQUIRED_STRUCTURES[SITE]
    admin = scope_for(db, get_user(db, "national-admin"), Action.READ_PATIENTS)
    df = queries_quality.structure_matrix(db, admin, site=SITE)
    expected = _expected(db, None)
    pd.testing.assert_frame_equal(df, expected)
    assert withdrawn not in set(df["pseudonym"])
    cells = set(df[list(names)].to_numpy().ravel())
    assert cells == set(STATUS)  # every status occurs: the comparison bites
    record, persons = _last_audit(db)
    assert record.action == "benchmark.structure_matrix"
    assert record.person_count == len(df) == len(persons)
    assert persons == _ids(db, df["pseudonym"])

    hus = scope_for(db, get_user(db, "clinician-hus"), Action.READ_PATIENTS)
    own = queries_quality.structure_matrix(db, hus, site=SITE)
    assert hus.centre_ids
    pd.testing.assert_frame_equal(own, _expected(db, set(hus.centre_ids)))
    assert 0 < len(own) < len(df)
    assert _last_audit(db)[1] == _ids(db, own["pseudonym"])


def test_matrix_of_a_centre_without_patients_is_empty_and_audited(
    db: Session,
) -> None:
    _prepare(db)
    scope = scope_for(db, get_user(db, "clinician-empty"), Action.READ_PATIENTS)
    df = queries_quality.structure_matrix(db, scope, site=SITE)
    assert list(df.columns) == ["pseudonym", *REQUIRED_STRUCTURES[SITE]]
    assert df.empty
    record, persons = _last_audit(db)
    assert (record.action, record.person_count, persons) == (
        "benchmark.structure_matrix",
        0,
        set(),
    )
