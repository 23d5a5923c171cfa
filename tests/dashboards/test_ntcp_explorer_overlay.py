"""The published-model overlay of the NTCP explorer on a simulated head and neck cohort.

Christianen 2012 (dysphagia) is logistic on the mean dose of Musc_Constrict_S and
Larynx_SG: fitted on the first, the explorer reads the second for the same patients
(as the researcher, audited). The expected overlay is computed here from the
simulation's own DVHs and the formula of the paper, independently of ntcp.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from apptest_helpers import by_label, new_app, sign_in, texts
from national_world import HN_PROJECT, National
from sqlalchemy import select
from sqlalchemy.orm import Session
from web_world import PASSWORD, audited_session

from etl.mapping.naming import RuleSet, default_rules_text, parse_rules_csv
from ntcp.dataset import DatasetSpec
from ntcp.explorer import fit_explorer, published_overlay
from ntcp.registry import get_model
from omop.cohort_tables import AuditRecord

ENDPOINT = "ctcae:Dysphagia>=2@365d"
MODEL = "christianen2012_dysphagia"


@pytest.fixture
def db(national_hn: National, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    yield from audited_session(national_hn, monkeypatch)


def _spec(**kw: Any) -> DatasetSpec:
    return DatasetSpec(**({"organ": "Musc_Constrict_S", "endpoint": ENDPOINT,
                           "project": HN_PROJECT} | kw))  # fmt: skip


def _bin_mean(structure: Any) -> float:
    dose, fraction = structure.bins()
    return float(np.sum(dose * fraction))


def test_christianen_overlay_equals_the_formula_on_the_same_patients(
    db: Session, national_hn: National
) -> None:
    fit = fit_explorer(db, "researcher-in", _spec(), "logistic")
    overlay = published_overlay(get_model(MODEL), fit, "Musc_Constrict_S",
                                session=db, user="researcher-in")  # fmt: skip
    assert not isinstance(overlay, str), overlay
    # the fitted patients' superior constrictor mean dose, as the dataset has it
    dvhs = fit.dataset.table.dvhs
    s_mean = np.sum(dvhs.dose_gy * dvhs.volume_fraction, axis=1)
    # each fitted patient in the simulation's truth (matched by that dose)
    rules = RuleSet(parse_rules_csv(default_rules_text()))
    truth = []
    for p in national_hn.cohort.patients:
        by_tg = {s.tg263: s for s in p.structures}
        if "Musc_Constrict_S" in by_tg:
            truth.append((_bin_mean(by_tg["Musc_Constrict_S"]), p, by_tg))
    keep, larynx_sg = [], []
    for dose in s_mean:
        gaps = [abs(t[0] - dose) for t in truth]
        i = int(np.argmin(gaps))
        assert gaps[i] < 1e-6
        _, patient, by_tg = truth[i]
        # the loader read Larynx_SG when the default rules map the local name
        local = patient.local_names["Larynx_SG"]
        mapped = rules.map(local).tg263_name == "Larynx_SG"
        keep.append(mapped)
        larynx_sg.append(_bin_mean(by_tg["Larynx_SG"]) if mapped else np.nan)
    keep_a = np.array(keep)
    assert overlay.attrs["n"] == int(keep_a.sum()) >= 10
    assert overlay.attrs["left_out"] == {"Larynx_SG": int((~keep_a).sum())}
    assert f"on {int(keep_a.sum())} of {len(keep_a)} patients" in overlay.attrs[
        "caption"]  # fmt: skip
    # Christianen 2012: logit = -6.09 + 0.057 Dmean(PCM sup) + 0.037 Dmean(supraglottic)
    eta = -6.09 + 0.057 * s_mean[keep_a] + 0.037 * np.array(larynx_sg)[keep_a]
    p = 1.0 / (1.0 + np.exp(-eta))
    x = fit.dose[keep_a]
    order = np.argsort(x, kind="stable")
    groups = np.array_split(order, min(8, max(1, x.size // 5)))
    assert overlay["published"].tolist() == pytest.approx(
        [float(p[g].mean()) for g in groups], abs=1e-9
    )
    assert overlay["dose_mean"].tolist() == pytest.approx(
        [float(x[g].mean()) for g in groups]
    )
    # the second organ was read as the researcher, through the audited extraction
    details = db.scalars(
        select(AuditRecord.detail).where(
            AuditRecord.actor == "researcher-in", AuditRecord.action == "ntcp dataset"
        )
    ).all()
    assert any(d.startswith("organ Larynx_SG;") for d in details)


def test_overlay_without_a_session_or_with_an_unrecorded_organ_says_so(
    db: Session,
) -> None:
    fit = fit_explorer(db, "researcher-in", _spec(), "logistic")
    model = get_model(MODEL)
    reason = published_overlay(model, fit, "Musc_Constrict_S")
    assert reason == f"{MODEL} also needs the dose of Larynx_SG"
    # fitted on another organ, the model's organs are read; Cochlea is not recorded
    other = fit_explorer(db, "researcher-in", _spec(organ="Cavity_Oral"), "logistic")
    drawn = published_overlay(model, other, "Cavity_Oral", session=db,
                              user="researcher-in")  # fmt: skip
    assert not isinstance(drawn, str)
    assert set(drawn.attrs["left_out"]) == {"Larynx_SG", "Musc_Constrict_S"}


def _fitted_page(national_hn: National, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The explorer as researcher-in, a logistic fit on Musc_Constrict_S done."""
    national_hn.env(monkeypatch)
    at = sign_in(new_app(), "researcher-in", PASSWORD)
    at = at.switch_page("pages/ntcp_explorer.py").run()
    assert not at.exception
    organ = by_label(at.selectbox, "Organ (patients with its dose-volume histogram)")
    organ.set_value("Musc_Constrict_S")
    by_label(at.text_input, "Endpoint").input(ENDPOINT)
    by_label(at.radio, "Model").set_value("logistic")
    at.run()
    by_label(at.button, "Fit").click()
    at.run()
    assert not at.exception, at.exception
    return at


def test_page_draws_the_overlay_with_its_caption(
    national_hn: National, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _fitted_page(national_hn, monkeypatch)
    by_label(at.selectbox, "Overlay a published model").set_value(get_model(MODEL))
    at.run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "dysphagia on " in shown  # the caption (Markdown-escaped)
    assert "also needs" not in shown


def _larynx_reads(national_hn: National) -> int:
    from omop.engine import make_engine, session_factory

    engine = make_engine(national_hn.url)
    try:
        with session_factory(engine)() as session:
            details = session.scalars(
                select(AuditRecord.detail).where(
                    AuditRecord.actor == "researcher-in",
                    AuditRecord.action == "ntcp dataset",
                )
            ).all()
    finally:
        engine.dispose()
    return sum(d.startswith("organ Larynx_SG;") for d in details)


def test_a_rerun_reuses_the_overlay_and_a_new_fit_reads_again(
    national_hn: National, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _fitted_page(national_hn, monkeypatch)
    before = _larynx_reads(national_hn)
    by_label(at.selectbox, "Overlay a published model").set_value(get_model(MODEL))
    at.run()
    assert _larynx_reads(national_hn) == before + 1
    at.run()  # a rerun (a download, another widget): the overlay is kept
    at.run()
    assert not at.exception, at.exception
    assert "dysphagia on " in texts(at)
    assert _larynx_reads(national_hn) == before + 1
    by_label(at.button, "Fit").click()  # a new fit: its patients are read again
    at.run()
    assert not at.exception, at.exception
    assert _larynx_reads(national_hn) == before + 2
