"""The toxicity funnel query on both backends, on the simulated national cohort.

Observed counts are checked against the simulation's truth (the grades it drew for
each patient, at the timepoint dates it stored); the expected counts against a
property of the maximum-likelihood logistic fit with an intercept: over every
centre, the expected count adds up to the observed count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from national_world import National
from sqlalchemy import select
from sqlalchemy.orm import Session
from web_world import audited_session

from cohort.benchmark import DOSE_ADJUSTED_LABEL
from cohort.benchmark.queries_funnel import casemix_table, toxicity_funnel
from cohort.errors import PermissionDeniedError
from cohort.permissions import Action, scope_for
from cohort.simulate.outcomes import timepoint_date
from cohort.users import get_user
from omop.cohort_tables import AuditRecord

TERM = "Pneumonitis"


@pytest.fixture
def db(national: National, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    yield from audited_session(national, monkeypatch)


def _scope(session: Session, name: str) -> Any:
    return scope_for(session, get_user(session, name), Action.READ_AGGREGATES)


def _true_events(
    national: National, horizon_days: int = 365, sites: set[str] | None = None
) -> Counter[str]:
    """Events per centre code from the simulation's truth (of ``sites``: all)."""
    out: Counter[str] = Counter()
    for p in national.cohort.patients:
        if not p.consented or p.withdrawn_on is not None:
            continue
        if sites is not None and p.site not in sites:
            continue
        days = [
            (timepoint_date(p.rt_start, p.rt_end, tp) - p.rt_start).days
            for tp, grade in p.grades.get(TERM, {}).items()
            if grade >= 2
        ]
        if any(0 <= d <= horizon_days for d in days):
            out[p.centre] += 1
    return out


def test_admin_sees_every_centre_with_true_event_counts(
    db: Session, national: National
) -> None:
    df = toxicity_funnel(db, _scope(db, "national-admin"), term=TERM, site="lung")
    truth = _true_events(national)
    assert df.attrs["n_events"] == sum(truth.values())
    assert not df.empty
    # the platform admin sees every centre by its code
    for row in df.itertuples():
        assert int(row.observed) == truth[str(row.centre)]
    if len(df) == len(national.cohort.practices):
        assert df["observed"].sum() == sum(truth.values())
        assert df["expected"].sum() == pytest.approx(df["observed"].sum(), rel=1e-4)
    # the stage recorded with consent is a factor now (it dropped out before)
    assert "stage" in df.attrs["factors_used"]
    assert "stage" not in df.attrs["factors_dropped"]
    assert "age_at_rt_start" in df.attrs["factors_used"]
    assert {"lower_95", "upper_95", "lower_998", "upper_998"} <= set(df.columns)
    inside = (df["ratio"] >= df["lower_998"]) & (df["ratio"] <= df["upper_998"])
    assert (inside != df["outside_998"]).all()


def test_casemix_stage_is_the_simulated_truth(db: Session, national: National) -> None:
    from cohort.consent import find_person
    from cohort.stage import parse_stage
    from etl.deid.identity import identify
    from etl.deid.keys import load_key

    keys: dict[str, Any] = {}
    truth: dict[int, str] = {}
    for p in national.cohort.patients:
        if not p.consented or p.site != "lung":
            continue
        key = keys.setdefault(
            p.centre, load_key(national.key_dir / f"{p.centre}.key", p.centre)
        )
        person = find_person(db, identify(key, p.hospital_id).pseudonym)
        assert person is not None and p.stage is not None
        truth[person.person_id] = parse_stage(p.stage)[0]
    df = casemix_table(db, site="lung", term=TERM)
    assert len(df) > 0
    assert dict(zip(df["person_id"], df["stage"], strict=True)) == {
        pid: truth[pid] for pid in df["person_id"]
    }
    assert set(df["stage"]) > {"III"}  # more than one level: the factor is used


def test_clinician_sees_own_centre_named_with_model_of_all_centres(
    db: Session, national: National
) -> None:
    own = toxicity_funnel(db, _scope(db, "clinician-hus"), term=TERM, site="lung")
    assert list(own["centre"]) == ["HUS"]
    assert int(own["observed"].iloc[0]) == _true_events(national)["HUS"]
    viewer = toxicity_funnel(db, _scope(db, "viewer-tays"), term=TERM, site="lung")
    assert own.attrs["n_patients"] == viewer.attrs["n_patients"]  # one model
    shown = set(viewer["centre"])
    assert "TAYS" in shown
    assert not shown & {"HUS", "AUH"}
    tays = viewer[viewer["centre"] == "TAYS"].iloc[0]
    assert bool(tays["own"])
    assert int(tays["observed"]) == _true_events(national)["TAYS"]


def test_dose_adjustment_is_labelled_as_hiding_practice(db: Session) -> None:
    df = toxicity_funnel(
        db, _scope(db, "viewer-tays"), term=TERM, site="lung",
        dose=("Lungs", "Mean[Gy]"),
    )  # fmt: skip
    assert set(df["adjustment"]) == {DOSE_ADJUSTED_LABEL}
    assert "dose" in df.attrs["factors_used"]
    plain = toxicity_funnel(db, _scope(db, "viewer-tays"), term=TERM, site="lung")
    assert DOSE_ADJUSTED_LABEL not in set(plain["adjustment"])


def test_read_is_audited_and_researcher_refused(db: Session) -> None:
    toxicity_funnel(db, _scope(db, "viewer-tays"), term=TERM)
    actions = db.scalars(
        select(AuditRecord.action).where(AuditRecord.actor == "viewer-tays")
    ).all()
    assert "benchmark.toxicity_funnel" in actions
    with pytest.raises(PermissionDeniedError):
        toxicity_funnel(db, _scope(db, "researcher-in"), term=TERM)


def test_other_centres_with_one_to_four_events_are_not_drawn(db: Session) -> None:
    """A point gives its events (observed = ratio x expected): 1-4 is a small cell.

    Checked for a viewer (own centre named) and the platform admin (every centre is
    another centre) against the per-centre counts of the unscoped case-mix table.
    """
    from cohort.benchmark.queries_funnel import casemix_table
    from cohort.centres import centre_codes

    codes = centre_codes(db)
    hidden_total = 0
    for user, own_code in (("viewer-tays", "TAYS"), ("national-admin", None)):
        for grade, horizon in ((2, 365), (3, 365), (2, 60)):
            kw = {"site": "lung", "term": TERM, "min_grade": grade,
                  "horizon_days": horizon}  # fmt: skip
            shown = toxicity_funnel(db, _scope(db, user), **kw)  # type: ignore[arg-type]
            table = casemix_table(db, **kw)  # type: ignore[arg-type]
            per = table.groupby("care_site_id")["event"].agg(["size", "sum"])
            others = per[[codes[int(i)] != own_code for i in per.index]]
            listed = others[others["size"] >= 5]
            small = listed["sum"].between(1, 4)
            assert shown.attrs["hidden_small"] == int(small.sum())
            rest = shown[~shown["own"]]
            assert sorted(rest["observed"]) == sorted(listed.loc[~small, "sum"])
            assert int(shown["own"].sum()) == int(own_code is not None)
            hidden_total += int(small.sum())
    assert hidden_total > 0, "the national world has no small cell to hide"


def test_term_without_events_gives_zero_observed(db: Session) -> None:
    df = toxicity_funnel(db, _scope(db, "clinician-hus"), term="Dry mouth")
    assert df.attrs["n_events"] == 0
    assert (df["observed"] == 0).all()
    assert (df["expected"] == 0).all()


# -- the page ----------------------------------------------------------------------


def _outcomes(national: National, username: str) -> Any:
    from apptest_helpers import new_app, sign_in
    from web_world import PASSWORD

    at = sign_in(new_app(), username, PASSWORD)
    assert not at.exception
    return at.switch_page("pages/outcomes.py").run()


def test_page_shows_funnel_with_own_centre_named(
    national: National, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apptest_helpers import by_label, texts

    national.env(monkeypatch)
    at = _outcomes(national, "viewer-tays")
    assert not at.exception
    shown = texts(at)
    assert "Funnel plot" in shown
    charts = [str(c.proto) for c in at.get("vega_lite_chart")]
    funnel = [c for c in charts if "lower_998" in c or "99.8% limits" in c]
    assert funnel, "the funnel chart"
    assert "TAYS" in funnel[0]
    assert "HUS" not in funnel[0] and "AUH" not in funnel[0]
    by_label(at.checkbox, "Adjust for dose (hides differences in practice)").check()
    at.run()
    assert not at.exception
    assert "no longer shows differences" in texts(at)
    assert "adjusted for dose: hides differences in practice" in "\n".join(
        str(c.proto) for c in at.get("vega_lite_chart")
    ) or "dose" in texts(at)


# -- the incidence curves of other centres -------------------------------------------


def test_incidence_curves_of_other_centres_hide_small_counts(
    db: Session, national: National
) -> None:
    """Another centre's curve: none with 1-4 events; no at-risk numbers; cut at < 5.

    Patients and events per centre come from the simulation's truth, for a viewer
    (own centre named) and the platform admin (every centre is another centre). The
    cut is checked by comparing HUS's curve as its own clinician sees it with the
    curve TAYS's viewer sees under an anonymised label.
    """
    from cohort.benchmark.queries_outcome import toxicity_incidence
    from cohort.benchmark.view import centre_view
    from cohort.centres import centre_codes

    lung = [p for p in national.cohort.patients if p.site == "lung"]
    patients = Counter(p.centre for p in lung if p.consented and not p.withdrawn_on)
    events = _true_events(national, sites={"lung"})
    codes = centre_codes(db)
    hidden_total = 0
    for user, own_code in (("viewer-tays", "TAYS"), ("national-admin", None)):
        scope = _scope(db, user)
        labels = centre_view(db, scope).labels
        by_code = {code: labels[i] for i, code in codes.items() if i in labels}
        shown = toxicity_incidence(db, scope, site="lung", term=TERM)
        listed = [c for c, n in patients.items() if c != own_code and n >= 5]
        small = [c for c in listed if 1 <= events[c] <= 4]
        assert shown.attrs["hidden_small"] == len(small)
        hidden_total += len(small)
        others = {by_code[c] for c in listed if c not in small}
        assert set(shown["centre"]) - {own_code} == others
        assert shown.loc[shown["centre"] != own_code, "at_risk"].isna().all()
        assert shown.loc[shown["centre"] == own_code, "at_risk"].notna().all()
    assert hidden_total > 0, "the national world has no small count to hide"

    own = toxicity_incidence(db, _scope(db, "clinician-hus"), site="lung", term=TERM)
    tays = _scope(db, "viewer-tays")
    label = {code: centre_view(db, tays).labels[i] for i, code in codes.items()}
    seen = toxicity_incidence(db, tays, site="lung", term=TERM)
    seen = seen[seen["centre"] == label["HUS"]].reset_index(drop=True)
    assert list(seen["days"]) == list(own["days"])
    few = own["at_risk"] < 5  # none here: the cut is tested in tests/cohort/benchmark
    for column in ("aalen_johansen", "one_minus_km"):
        assert seen.loc[few, column].isna().all()
        assert seen.loc[~few, column].equals(own.loc[~few, column])


@pytest.mark.parametrize("site", [None, "lung"])
def test_expected_counts_equal_sklearn_fit(db: Session, site: str | None) -> None:
    """The Newton fit gives scikit-learn's unpenalised expected counts (1e-6)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from cohort.benchmark import design_matrix, expected_counts
    from cohort.benchmark.queries_funnel import CASE_MIX_FACTORS, casemix_table

    table = casemix_table(db, site=site, term=TERM)
    factors = [f for f in CASE_MIX_FACTORS if not (site and f == "site")]
    got = expected_counts(table, "event", factors, by="care_site_id")
    x = design_matrix(table, factors).to_numpy(dtype=float)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    y = table["event"].to_numpy()
    model = LogisticRegression(C=np.inf, max_iter=20000, tol=1e-12).fit(x, y)
    want = table.assign(p=model.predict_proba(x)[:, 1]).groupby("care_site_id")["p"]
    assert got["expected"].to_numpy() == pytest.approx(
        want.sum().to_numpy(), rel=1e-6, abs=1e-6
    )
