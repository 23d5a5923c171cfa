"""The NTCP explorer: ntcp.explorer on both backends and the page per role (AppTest).

The world is the simulated national cohort (national_world.py): ``researcher-in`` is
an analyst of project LUNGX (every consented patient), ``researcher-out`` of none.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from apptest_helpers import by_label, new_app, sign_in, texts
from national_world import PROJECT, National
from sqlalchemy import select
from sqlalchemy.orm import Session
from web_world import PASSWORD, audited_session

from cohort.errors import PermissionDeniedError
from ntcp.dataset import DatasetSpec
from ntcp.explorer import (
    ExplorerError,
    calibration_table,
    dose_bins,
    export_dataset_csv,
    fit_explorer,
    project_organs,
    published_overlay,
    report_html,
    researcher_projects,
    response_curve,
)
from ntcp.registry import get_model
from omop.cohort_tables import AuditRecord

ENDPOINT = "ctcae:Pneumonitis>=2@365d"


@pytest.fixture
def db(national: National, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    yield from audited_session(national, monkeypatch)


def _spec(**kw: Any) -> DatasetSpec:
    return DatasetSpec(**({"organ": "Lungs", "endpoint": ENDPOINT,
                           "project": PROJECT} | kw))  # fmt: skip


def test_projects_and_organs_of_members_only(db: Session, national: National) -> None:
    assert researcher_projects(db, "researcher-in") == [PROJECT]
    assert researcher_projects(db, "researcher-out") == []
    assert researcher_projects(db, "viewer-tays") == []
    organs = project_organs(db, "researcher-in", PROJECT)
    loaded = [
        p for p in national.cohort.patients if p.consented and p.withdrawn_on is None
    ]
    # every consented patient has a dataset; a centre's local name variants that the
    # default rules do not map leave some without "Lungs"
    assert len(loaded) / 3 < organs["Lungs"] <= len(loaded)
    with pytest.raises(PermissionDeniedError):
        project_organs(db, "researcher-out", PROJECT)


def test_fit_tables_and_report(db: Session) -> None:
    fit = fit_explorer(db, "researcher-in", _spec(), "logistic")
    n, events = len(fit.y), int(fit.y.sum())
    assert fit.result["n_patients"] == n and fit.result["n_events"] == events
    slope = fit.result["parameters"]["Mean[Gy]"] if "Mean[Gy]" in fit.result[
        "parameters"] else next(iter(fit.result["parameters"].values()))  # fmt: skip
    assert "estimate" in slope
    bins = dose_bins(fit)
    assert int(bins["n"].sum()) == n
    assert int(bins["events"].sum()) == events
    assert (bins["observed_lo"] <= bins["observed"] + 1e-12).all()
    assert (bins["observed"] <= bins["observed_hi"] + 1e-12).all()
    for row in bins.itertuples():  # Clopper-Pearson by hand through scipy's beta
        from scipy.stats import beta

        k, m = int(row.events), int(row.n)
        lo = beta.ppf(0.025, k, m - k + 1) if k else 0.0
        assert row.observed_lo == pytest.approx(lo)
    cal = calibration_table(fit)
    assert int(cal["n"].sum()) == n
    assert cal["observed"].to_numpy() @ cal["n"].to_numpy() == pytest.approx(events)
    curve = response_curve(fit)
    assert np.all(np.diff(curve["ntcp"].dropna()) >= -1e-12) or np.all(
        np.diff(curve["ntcp"].dropna()) <= 1e-12
    )
    html = report_html(fit)
    assert "<html" in html.lower() and "Pneumonitis" in html


def test_fit_lkb_has_profile_intervals_or_says_why(db: Session) -> None:
    spec = _spec(alpha_beta_gy=3.0)
    try:
        fit = fit_explorer(db, "researcher-in", spec, "lkb")
    except ExplorerError as exc:
        reason = str(exc)
    else:
        assert fit.result["model"] == "lkb"
        assert "ci95_profile" in fit.result["parameters"]["td50_gy"]
        return
    assert "did not converge" in reason


def test_endpoint_without_events_is_a_plain_error(db: Session) -> None:
    with pytest.raises(ExplorerError, match="no events"):
        fit_explorer(db, "researcher-in", _spec(endpoint="ctcae:Dry mouth>=2@365d"),
                     "logistic")  # fmt: skip


def test_organ_nobody_has_is_a_plain_error(db: Session) -> None:
    with pytest.raises(ExplorerError, match="no patient qualifies"):
        fit_explorer(db, "researcher-in", _spec(organ="Cochlea_L"), "lkb")


def test_published_model_needing_other_organs_says_so(db: Session) -> None:
    fit = fit_explorer(db, "researcher-in", _spec(), "logistic")
    reason = published_overlay(get_model("christianen2012_dysphagia"), fit, "Lungs")
    assert isinstance(reason, str) and "Musc_Constrict_S" in reason


def test_dataset_export_has_project_pseudonyms_and_is_audited(db: Session) -> None:
    text = export_dataset_csv(db, "researcher-in", _spec())
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(r["patient_id"].startswith(f"P-{PROJECT}-") for r in rows)
    actions = db.scalars(
        select(AuditRecord.action).where(AuditRecord.actor == "researcher-in")
    ).all()
    assert "ntcp dataset export" in actions
    with pytest.raises(PermissionDeniedError):
        export_dataset_csv(db, "researcher-out", _spec())


# -- the page, per role ------------------------------------------------------------


def _open(username: str, project: str | None = None) -> Any:
    at = sign_in(new_app(), username, PASSWORD)
    assert not at.exception
    if project is not None:
        at.query_params["project"] = project
    return at.switch_page("pages/ntcp_explorer.py").run()


def test_member_fits_and_sees_charts(
    national: National, monkeypatch: pytest.MonkeyPatch
) -> None:
    national.env(monkeypatch)
    at = _open("researcher-in")
    assert not at.exception
    assert "NTCP explorer" in texts(at)
    by_label(at.radio, "Model").set_value("logistic")
    by_label(at.button, "Fit").click()
    at.run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Parameters" in shown and "Calibration" in shown
    assert len(list(at.get("vega_lite_chart"))) >= 2
    labels = [b.label for b in at.get("download_button")]
    assert "Download the dataset (CSV, project pseudonyms)" in labels


def test_no_events_is_a_plain_message(
    national: National, monkeypatch: pytest.MonkeyPatch
) -> None:
    national.env(monkeypatch)
    at = _open("researcher-in")
    by_label(at.text_input, "Endpoint").input("ctcae:Dry mouth>=2@365d")
    by_label(at.button, "Fit").click()
    at.run()
    assert not at.exception
    assert "no events" in texts(at)


def test_outsider_sees_nothing_of_the_project(
    national: National, monkeypatch: pytest.MonkeyPatch
) -> None:
    national.env(monkeypatch)
    at = _open("researcher-out")
    assert not at.exception
    shown = texts(at)
    assert (
        "not a member of an active project" in shown
        or "no access" in shown
        or ("not have access" in shown)
    )
    assert PROJECT not in texts(at)
    assert not at.selectbox


def test_left_project_in_the_address_is_a_plain_message(
    national: National, monkeypatch: pytest.MonkeyPatch
) -> None:
    national.env(monkeypatch)
    at = _open("researcher-in", project="GONE")
    assert not at.exception
    assert "no longer" in texts(at)


@pytest.mark.parametrize("username", ["viewer-tays", "clinician-hus"])
def test_viewer_and_clinician_do_not_get_the_page(
    national: National, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    national.env(monkeypatch)
    at = sign_in(new_app(), username, PASSWORD)
    assert not at.exception
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/ntcp_explorer.py")
