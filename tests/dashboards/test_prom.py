"""The patient's questionnaire page in AppTest: steps, drafts, submit, refusals."""

from __future__ import annotations

import datetime
import os
import stat

import pytest
from apptest_helpers import by_label, open_link, texts
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest
from web_world import World

from instruments.qlq_c30 import score_qlq_c30
from instruments.store import read_prom_answers, read_prom_scores
from omop.cdm import SurveyConduct
from omop.engine import make_engine, session_factory

# Items 1-28 on 1-4, 29-30 on 1-7: a known answer set.
ANSWERS = {i: (i % 4) + 1 for i in range(1, 29)} | {29: 5, 30: 6}


def shown(label: str) -> str:
    """A label as displayed (Markdown escapes removed)."""
    return label.replace("\\", "")


def _answer_step(at: AppTest) -> list[int]:
    numbers = []
    for radio in at.radio:
        number = int(shown(radio.label).split(".")[0])
        numbers.append(number)
        radio.set_value(ANSWERS[number])
    at.run()
    return numbers


def _fill_and_review(at: AppTest) -> list[list[int]]:
    steps = []
    while at.radio:
        steps.append(_answer_step(at))
        by_label(at.button, "Next").click()
        at.run()
    return steps


def _surveys(world: World, hid: str) -> int:
    engine = make_engine(world.url)
    with session_factory(engine)() as s:
        n = s.scalar(
            select(func.count())
            .select_from(SurveyConduct)
            .where(SurveyConduct.person_id == world.person_ids[hid])
        )
    engine.dispose()
    return int(n or 0)


def test_full_form_stores_the_scores_once(web: World) -> None:
    token = web.link("HUS-1001")
    at = open_link(token)
    assert not at.exception
    assert "Step 1 of 8" in at.get("progress")[0].proto.text
    labels = [shown(r.label) for r in at.radio]
    assert labels[0].startswith("1. ") and len(labels) == 5
    assert "Item 1" in labels[0]  # no wording file: number and neutral label
    steps = _fill_and_review(at)
    assert steps == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15],
                     [16, 17, 18, 19, 20], [21, 22, 23, 24, 25], [26, 27, 28],
                     [29, 30]]  # fmt: skip
    assert "Check your answers" in texts(at)
    assert "30. Item 30" in shown(texts(at))
    by_label(at.button, "Submit").click()
    at.run()
    assert "Thank you" in texts(at)
    assert not at.radio and "Submit" not in [b.label for b in at.button]

    engine = make_engine(web.url)
    pid = web.person_ids["HUS-1001"]
    with session_factory(engine)() as s:
        answers = read_prom_answers(s, [pid])
        scores = read_prom_scores(s, [pid])
    engine.dispose()
    assert len(answers) == 30
    assert len(scores) == 1
    row = scores.iloc[0]
    assert row["timepoint"] == "m3"
    truth = score_qlq_c30([ANSWERS[i] for i in range(1, 31)])
    ql2 = truth.scores[0, list(truth.codes).index("QL2")]
    assert row["QL2"] == pytest.approx(ql2)
    # The stored date is today shifted by the patient's date offset.
    shifted = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(
        days=web.offsets["HUS-1001"]
    )
    assert row["completed_on"] in (shifted, shifted - datetime.timedelta(days=1))

    # The same link again, in a new browser session: refused, nothing stored.
    again = open_link(token)
    assert "already been sent" in texts(again)
    assert not again.radio
    assert _surveys(web, "HUS-1001") == 1


def test_answers_survive_leaving_and_coming_back(web: World) -> None:
    token = web.link("HUS-1002")
    at = open_link(token)
    _answer_step(at)
    by_label(at.button, "Next").click()
    at.run()
    at.radio[0].set_value(ANSWERS[6])
    at.run()
    drafts = web.data_dir / "prom-drafts"
    files = list(drafts.glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    assert "HUS" not in files[0].read_text()  # answers only

    back = open_link(token)  # a new session: resumes at the first open step
    assert [shown(r.label).split(".")[0] for r in back.radio] == [
        "6",
        "7",
        "8",
        "9",
        "10",
    ]
    assert back.radio[0].value == ANSWERS[6]
    by_label(back.button, "Back").click()
    back.run()
    assert [r.value for r in back.radio] == [ANSWERS[i] for i in range(1, 6)]


def test_next_with_gaps_warns_once_then_moves_on(web: World) -> None:
    token = web.link("TAYS-2001", "eot")
    at = open_link(token)
    at.radio[0].set_value(1)
    by_label(at.button, "Next").click()
    at.run()
    assert "Please answer every question" in texts(at)
    assert shown(at.radio[0].label).startswith("1.")
    by_label(at.button, "Next").click()
    at.run()
    assert shown(at.radio[0].label).startswith("6.")


@pytest.mark.parametrize(
    ("hid", "expected"),
    [("HUS-1003", "no longer available"), ("HUS-1004", "no longer available")],
)
def test_declined_or_withdrawn_patient_gets_no_form(
    web: World, hid: str, expected: str
) -> None:
    drafts = web.data_dir / "prom-drafts"
    before = sorted(drafts.glob("*.json")) if drafts.exists() else []
    token = web.link(hid)
    at = open_link(token)
    assert expected in texts(at)
    assert not at.radio
    after = sorted(drafts.glob("*.json")) if drafts.exists() else []
    assert after == before
    assert _surveys(web, hid) == 0


def test_forged_expired_and_missing_links(web: World) -> None:
    token = web.link("TAYS-2001", "m6")
    head, tail = token.split(".")
    forged = open_link(head + "." + tail[::-1])
    assert "This link is not valid" in texts(forged)
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=60)
    expired = open_link(web.link("TAYS-2001", "m12", now=long_ago))
    assert "This link has expired" in texts(expired)
    markup = open_link("<script>alert(1)</script>")
    assert "This link is not valid" in texts(markup)
    none = open_link(None)
    assert not none.radio
    for at in (forged, expired, markup):
        assert not at.radio and not at.exception


def test_failed_store_leaves_link_and_answers(
    web: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = web.link("HUS-1002", "m6")
    web.env(monkeypatch, keys=False)  # no key folder: the date offset is unknown
    at = open_link(token)
    _fill_and_review(at)
    by_label(at.button, "Submit").click()
    at.run()
    assert "could not be sent just now" in texts(at)
    assert by_label(at.button, "Submit")
    web.env(monkeypatch)  # keys back: the same session submits
    by_label(at.button, "Submit").click()
    at.run()
    assert "Thank you" in texts(at)


def test_two_sessions_submitting_one_link_store_once(web: World) -> None:
    token = web.link("TAYS-2001", "baseline")
    first, second = open_link(token), open_link(token)
    _fill_and_review(first)
    _fill_and_review(second)
    by_label(first.button, "Submit").click()
    first.run()
    by_label(second.button, "Submit").click()
    second.run()
    assert "Thank you" in texts(first)
    assert "already been sent" in texts(second)
    assert _surveys(web, "TAYS-2001") == 1
