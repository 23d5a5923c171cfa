"""The national-scale reads (issue 16 part 7) against their former computations.

On the simulated national cohort (national_world.py: written by the production
writers, both backends), each read rewritten for speed is compared with the way it
was computed before, kept here: the PROM completion counted in SQL against the
aggregation of every questionnaire in Python; the toxicity assessment days against
:func:`instruments.store.read_toxicity`; the population DVH band from the samples stored with
the DVHs (and from the narrow latest-curve read, for curves without them) against the
full DVH rows; prescriptions by a SQL selection
against prescriptions by ids; the QLQ-C30 means and deteriorations aggregated in SQL
against the frame functions on every questionnaire's scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from national_world import National
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from web_world import audited_session

from cohort import invitations
from cohort.benchmark import queries_dose, queries_outcome
from cohort.benchmark.prom import deterioration_share, trajectory
from cohort.permissions import Action, scope_for
from cohort.protocol import DEFAULT_TIMEPOINTS
from cohort.users import get_user
from etl.dose.radiobiology import dvh_to_eqd2
from etl.store.dvh_read import read_dvh_rows, read_latest_curves
from etl.store.dvh_rows import dvh_from_row
from etl.store.metric_reads import metric_values, prescriptions
from instruments.store import read_prom_scores, read_survey_timings, read_toxicity
from instruments.store.toxicity_days import assessment_days, assessment_spans
from omop.cdm import Person
from omop.cohort_tables import Enrolment, Invitation
from omop.ingest_tables import Dvh, IngestDataset
from omop.summary_tables import DvhSampled

TERM = "Pneumonitis"


@pytest.fixture
def db(national: National, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    yield from audited_session(national, monkeypatch)


def _python_completion(
    session: Session, centre_ids: list[int] | None
) -> list[tuple[int, str, int, int]]:
    """The former ``invitations.completion``: every questionnaire read into Python."""
    codes = [tp.code for tp in DEFAULT_TIMEPOINTS]
    invited = session.execute(
        select(Person.care_site_id, Invitation.timepoint_code, Invitation.person_id)
        .join(Person, Person.person_id == Invitation.person_id)
        .distinct()
    ).all()
    enrolled = select(Enrolment.person_id)
    site_of = {
        int(p): int(s or 0)
        for p, s in session.execute(
            select(Person.person_id, Person.care_site_id).where(
                Person.person_id.in_(enrolled)
            )
        )
    }
    expected: dict[tuple[int, str], set[int]] = {}
    completed: dict[tuple[int, str], set[int]] = {}
    for site, code, pid in invited:
        expected.setdefault((int(site or 0), str(code)), set()).add(int(pid))
    for pid, timepoint, _ended in read_survey_timings(session, enrolled):
        if timepoint not in codes:
            continue
        key = (site_of[pid], timepoint)
        expected.setdefault(key, set()).add(pid)
        completed.setdefault(key, set()).add(pid)
    order = {c: i for i, c in enumerate(codes)}
    rows = [
        (site, code, len(people), len(completed.get((site, code), ())))
        for (site, code), people in expected.items()
        if centre_ids is None or site in centre_ids
    ]
    return sorted(rows, key=lambda r: (r[0], order.get(r[1], 99), r[1]))


def test_completion_in_sql_equals_the_python_aggregation(db: Session) -> None:
    everyone = db.scalars(select(Person.person_id)).all()
    persons = sorted(invitations.without_deaths(db, set(everyone)))  # may be invited
    assert len(persons) >= 6
    # invitations through the writer: answered, unanswered, a code off the protocol
    for pid, code in zip(
        persons[:6], ["m3", "m3", "m6", "m12", "m9", "baseline"], strict=True
    ):
        invitations.issue(db, b"k" * 32, pid, code)
    invitations.issue(db, b"k" * 32, persons[0], "m3")  # invited twice: one person
    invitations.issue(db, b"k" * 32, persons[4], "m9")
    db.flush()
    got = [
        (r.care_site_id, r.timepoint, r.expected, r.completed)
        for r in invitations.completion(db)
    ]
    assert got == _python_completion(db, None)
    assert any(e > c for _s, _t, e, c in got)  # invited, not answered
    assert any(t == "m9" for _s, t, _e, _c in got)
    assert sum(c for *_x, c in got) > 0
    one = [got[0][0]]
    assert [
        (r.care_site_id, r.timepoint, r.expected, r.completed)
        for r in invitations.completion(db, one)
    ] == _python_completion(db, one)
    assert invitations.completion(db, []) == []
    sites = sorted({s for s, *_x in got})
    assert len(sites) >= 2
    several = [0, sites[0], sites[-1]]  # 0: persons with no centre
    assert [
        (r.care_site_id, r.timepoint, r.expected, r.completed)
        for r in invitations.completion(db, several)
    ] == _python_completion(db, several)


@pytest.mark.parametrize(("term", "casefold"), [(TERM, False), ("pneumonITIS", True)])
def test_assessment_days_equal_the_gradings_read_back(
    db: Session, term: str, casefold: bool
) -> None:
    persons = select(Enrolment.person_id).where(Enrolment.state == "consented")
    tox = read_toxicity(db, db.scalars(persons).all())
    assert len(tox) > 0
    names = tox["term"].str.casefold() if casefold else tox["term"]
    tox = tox.assign(hit=(names == (term.casefold() if casefold else term))
                     & (tox["grade"] >= 2))  # fmt: skip
    want = tox.groupby(["person_id", "assessed_on"])["hit"].any()
    got = assessment_days(db, persons, term, 2, casefold=casefold)
    assert [(d.person_id, d.assessed_on) for d in got] == list(want.index)
    assert [d.hit for d in got] == list(want)
    assert any(d.hit for d in got)
    if casefold:  # the exact comparison does not match another case
        assert not any(d.hit for d in assessment_days(db, persons, term, 2))
    # The per-person summary: last day assessed, first day with a hit.
    days = want.reset_index()
    spans = {
        int(pid): (g["assessed_on"].max(), g.loc[g["hit"], "assessed_on"].min())
        for pid, g in days.groupby("person_id")
    }
    got_spans = assessment_spans(db, persons, term, 2, casefold=casefold)
    assert got_spans == {
        p: (last, None if pd.isna(hit) else hit) for p, (last, hit) in spans.items()
    }


def _old_band(
    session: Session, scope: Any, structure: str, scheme: str | None, eqd2: bool
) -> pd.DataFrame:
    """The former band: every DVH row with its dataset read, the latest kept."""
    view = queries_dose.centre_view(session, scope)
    persons = queries_dose._persons(view, "lung")
    latest: dict[int, Any] = {}
    for row in read_dvh_rows(session, persons=persons, structures=[structure]):
        pid = row.dvh.person_id
        if pid not in latest or row.dvh.dataset_id > latest[pid].dvh.dataset_id:
            latest[pid] = row
    plan = prescriptions(session, {r.dataset.episode_id for r in latest.values()
                                   if r.dataset.episode_id})  # fmt: skip
    curves: dict[int, list[Any]] = {}
    top = 0.0
    for row in latest.values():
        total, n = plan.get(row.dataset.episode_id or -1, (None, None))
        if scheme is not None and queries_dose.scheme_label(total, n) != scheme:
            continue
        dvh = dvh_from_row(row.dvh)
        if eqd2:
            dvh = dvh_to_eqd2(dvh, n, 3.0)
        dose, volume = dvh.cumulative()
        curves.setdefault(int(row.dataset.care_site_id), []).append(
            (dose, 100.0 * volume / volume[0])
        )
        top = max(top, float(dose[-1]))
    grid = np.arange(0.0, top + 1.0, 1.0)
    rows = []
    for site_id, items in curves.items():
        sampled = np.vstack([np.interp(grid, d, v, right=0.0) for d, v in items])
        q1, med, q3 = np.percentile(sampled, [25, 50, 75], axis=0)
        rows += [
            {"centre": view.labels[site_id], "dose_gy": g, "q1": a, "median": b,
             "q3": c, "patients": len(items)}
            for g, a, b, c in zip(grid, q1, med, q3, strict=True)
        ]  # fmt: skip
    return pd.DataFrame(rows)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["centre", "dose_gy"]).reset_index(drop=True)


@pytest.mark.parametrize("eqd2", [False, True])
def test_dvh_band_equals_the_full_read(db: Session, eqd2: bool) -> None:
    scope = scope_for(db, get_user(db, "national-admin"), Action.READ_AGGREGATES)
    schemes = queries_dose.dose_schemes(db, scope, site="lung", structure="Lungs",
                                        metric="Mean[Gy]")  # fmt: skip
    for scheme in [None, str(schemes["scheme"].iloc[0])]:
        got = queries_dose.dvh_band(db, scope, site="lung", structure="Lungs",
                                    scheme=scheme, eqd2=eqd2)  # fmt: skip
        want = _old_band(db, scope, "Lungs", scheme, eqd2)
        assert len(got) > 0
        pd.testing.assert_frame_equal(_sorted(got), _sorted(want))


@pytest.mark.parametrize("eqd2", [False, True])
def test_dvh_band_samples_curves_without_stored_samples(
    db: Session, eqd2: bool
) -> None:
    """Curves stored before the summary (no row) are sampled at read time."""
    scope = scope_for(db, get_user(db, "national-admin"), Action.READ_AGGREGATES)
    lungs = select(Dvh.dvh_id).where(Dvh.tg263_name == "Lungs")
    ids = db.scalars(lungs.order_by(Dvh.dvh_id)).all()
    db.execute(delete(DvhSampled).where(DvhSampled.dvh_id.in_(ids[::2])))
    stored = select(func.count(DvhSampled.dvh_id.distinct()))
    assert 0 < db.scalar(stored.where(DvhSampled.dvh_id.in_(ids))) < len(ids)
    got = queries_dose.dvh_band(db, scope, site="lung", structure="Lungs", eqd2=eqd2)
    want = _old_band(db, scope, "Lungs", None, eqd2)
    assert len(got) > 0
    pd.testing.assert_frame_equal(_sorted(got), _sorted(want))


def test_latest_curves_are_the_latest_dvh_rows(db: Session) -> None:
    persons = select(Enrolment.person_id)
    rows = read_dvh_rows(db, persons=persons, structures=["Heart"])
    want: dict[int, Any] = {}
    for row in rows:
        if (
            row.dvh.person_id not in want
            or row.dvh.dataset_id > want[row.dvh.person_id].dvh.dataset_id
        ):
            want[row.dvh.person_id] = row
    got = read_latest_curves(db, persons=persons, structure="Heart")
    assert len(got) == len(want) > 0
    for curve in got:
        row = want[curve.person_id]
        assert (curve.dataset_id, curve.episode_id, curve.care_site_id) == (
            row.dvh.dataset_id, row.dataset.episode_id, row.dataset.care_site_id
        )  # fmt: skip
        assert np.array_equal(dvh_from_row(curve).differential_cc,
                              dvh_from_row(row.dvh).differential_cc)  # fmt: skip


def test_prescriptions_of_a_selection_equal_those_of_ids(db: Session) -> None:
    episodes = select(IngestDataset.episode_id).where(
        IngestDataset.episode_id.is_not(None)
    )
    ids = db.scalars(episodes).all()
    by_ids = prescriptions(db, ids)
    assert by_ids and all(v[0] and v[1] for v in by_ids.values())
    assert prescriptions(db, episodes) == by_ids
    assert prescriptions(db, []) == {}


def _old_scores(session: Session, view: Any) -> pd.DataFrame:
    """The former PROM read: every questionnaire's scores into a long frame."""
    persons = select(Enrolment.person_id).where(
        Enrolment.state == "consented", Enrolment.treatment_site == "lung"
    )
    info = dict(
        session.execute(
            select(Enrolment.person_id, Enrolment.care_site_id).where(
                Enrolment.person_id.in_(persons)
            )
        ).all()
    )
    wide = read_prom_scores(session, list(info))
    meta = {"person_id", "survey_conduct_id", "timepoint", "completed_on", "key",
            "instrument"}  # fmt: skip
    long = wide.melt(
        ["person_id", "timepoint"], [c for c in wide.columns if c not in meta],
        var_name="scale", value_name="score",
    ).dropna(subset=["score"])  # fmt: skip
    long["centre"] = long["person_id"].map(info).map(view.labels)
    return long.rename(columns={"person_id": "pseudonym"})


def test_prom_reads_in_sql_equal_the_frame_computation(db: Session) -> None:
    scope = scope_for(db, get_user(db, "national-admin"), Action.READ_AGGREGATES)
    view = queries_dose.centre_view(db, scope)
    long = _old_scores(db, view)
    assert len(long) > 0
    cols = ["pseudonym", "timepoint", "scale", "score", "centre"]
    want_t = trajectory(long[cols], by=("centre",))
    want_d = deterioration_share(long[cols], "baseline", by=("centre",))
    keep = queries_outcome._keep  # the small-cell rule the page applies after
    got_t = queries_outcome.prom_trajectory(db, scope, site="lung")
    got_d = queries_outcome.prom_deterioration(db, scope, site="lung")
    pd.testing.assert_frame_equal(got_t, keep(view, want_t, "n"), rtol=1e-9)
    pd.testing.assert_frame_equal(got_d, keep(view, want_d, "n"), rtol=1e-9)
    assert got_d["n_deteriorated"].sum() > 0


def _old_distribution(
    session: Session, scope: Any, structure: str, metric: str, scheme: str | None
) -> pd.DataFrame:
    """The former distribution: pandas quantiles of every patient's latest value."""
    view = queries_dose.centre_view(session, scope)
    persons = queries_dose._persons(view, "lung")
    rows = metric_values(session, persons=persons, structure=structure, metric=metric)
    latest: dict[int, Any] = {}
    for r in rows:
        if r.person_id not in latest or r.dataset_id > latest[r.person_id].dataset_id:
            latest[r.person_id] = r
    plan = prescriptions(session, {r.episode_id for r in rows if r.episode_id})
    out = []
    by_site: dict[int, list[float]] = {}
    for r in latest.values():
        label = queries_dose.scheme_label(*plan.get(r.episode_id or -1, (None, None)))
        if scheme is None or label == scheme:
            by_site.setdefault(r.care_site_id, []).append(r.value)
    for site_id, values in by_site.items():
        v = pd.Series(values)
        out.append({
            "centre": view.labels[site_id], "patients": len(v),
            "p10": v.quantile(0.1), "q1": v.quantile(0.25), "median": v.median(),
            "q3": v.quantile(0.75), "p90": v.quantile(0.9),
        })  # fmt: skip
    return pd.DataFrame(out).sort_values("centre").reset_index(drop=True)


def test_dose_distribution_equals_pandas_quantiles(db: Session) -> None:
    scope = scope_for(db, get_user(db, "national-admin"), Action.READ_AGGREGATES)
    chosen = {"site": "lung", "structure": "Lungs", "metric": "Mean[Gy]"}
    schemes = queries_dose.dose_schemes(db, scope, **chosen)
    for scheme in [None, str(schemes["scheme"].iloc[0])]:
        got = queries_dose.dose_distribution(db, scope, **chosen, scheme=scheme)
        want = _old_distribution(db, scope, "Lungs", "Mean[Gy]", scheme)
        assert len(got) > 1 and (got["patients"] >= 5).any()
        shown = got["patients"].notna()
        pd.testing.assert_frame_equal(
            got[shown].reset_index(drop=True),
            want[want["centre"].isin(got["centre"][shown])].reset_index(drop=True),
            check_dtype=False, rtol=0, atol=1e-12,
        )  # fmt: skip
