"""QLQ-C30 scoring: hand-worked examples and an independent plain-Python scorer."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

import omop
from instruments.errors import ResponseValidationError
from instruments.qlq_c30 import (
    QLQ_C30,
    SCORE_CODES,
    change_from_baseline,
    deterioration,
    higher_is_better,
    score_qlq_c30,
    validate_qlq_c30,
)
from instruments.registry import get_instrument

# The Scoring Manual's table, typed in independently of the code under test.
FUNCTIONAL = {
    "PF2": [1, 2, 3, 4, 5],
    "RF2": [6, 7],
    "EF": [21, 22, 23, 24],
    "CF": [20, 25],
    "SF": [26, 27],
}
SYMPTOM = {
    "FA": [10, 12, 18],
    "NV": [14, 15],
    "PA": [9, 19],
    "DY": [8],
    "SL": [11],
    "AP": [13],
    "CO": [16],
    "DI": [17],
    "FI": [28],
}
GLOBAL = {"QL2": [29, 30]}
SUMMARY_FUNCTIONAL = ["PF2", "RF2", "EF", "CF", "SF"]
SUMMARY_SYMPTOM = ["FA", "NV", "PA", "DY", "SL", "AP", "CO", "DI"]
ORDER = [
    "QL2",
    "PF2",
    "RF2",
    "EF",
    "CF",
    "SF",
    "FA",
    "NV",
    "PA",
    "DY",
    "SL",
    "AP",
    "CO",
    "DI",
    "FI",
    "SUMMARY",
]


def reference_scores(answers: dict[int, float | None]) -> dict[str, float | None]:
    """Score one response set with plain Python loops, straight from the manual."""
    out: dict[str, float | None] = {}
    for table, rng, functional in (
        (GLOBAL, 6, False),
        (FUNCTIONAL, 3, True),
        (SYMPTOM, 3, False),
    ):
        for code, items in table.items():
            got = [answers[i] for i in items if answers.get(i) is not None]
            if len(got) * 2 < len(items):
                out[code] = None
                continue
            rs = 0.0
            for v in got:
                rs += v
            rs /= len(got)
            if functional:
                out[code] = (1 - (rs - 1) / rng) * 100
            else:
                out[code] = (rs - 1) / rng * 100
    parts = [out[c] for c in SUMMARY_FUNCTIONAL] + [
        None if out[c] is None else 100 - out[c] for c in SUMMARY_SYMPTOM
    ]
    if any(p is None for p in parts):
        out["SUMMARY"] = None
    else:
        total = 0.0
        for p in parts:
            total += p
        out["SUMMARY"] = total / 13
    return out


def to_row(answers: dict[int, float | None]) -> np.ndarray:
    row = np.full(30, np.nan)
    for item, value in answers.items():
        if value is not None:
            row[item - 1] = value
    return row


def assert_scores(result_row: np.ndarray, expected: dict[str, float | None]) -> None:
    for k, code in enumerate(ORDER):
        want = expected[code]
        if want is None:
            assert math.isnan(result_row[k]), code
        else:
            assert result_row[k] == pytest.approx(want, abs=1e-9), code


def test_output_columns_are_the_contract():
    assert list(SCORE_CODES) == ORDER


def test_all_minimum_answers():
    result = score_qlq_c30(np.ones((1, 30)))
    expected = dict.fromkeys(FUNCTIONAL, 100.0) | dict.fromkeys(SYMPTOM, 0.0)
    expected |= {"QL2": 0.0, "SUMMARY": 100.0}
    assert_scores(result.scores[0], expected)


def test_all_maximum_answers():
    row = np.r_[np.full(28, 4.0), 7.0, 7.0]
    result = score_qlq_c30(row)
    expected = dict.fromkeys(FUNCTIONAL, 0.0) | dict.fromkeys(SYMPTOM, 100.0)
    expected |= {"QL2": 100.0, "SUMMARY": 0.0}
    assert_scores(result.scores[0], expected)


def test_hand_worked_mixed_example():
    # Items 1-5 = 1,2,2,1,3 -> RS 1.8 -> PF2 = (1 - 0.8/3) * 100 = 73.333...
    # Items 29, 30 = 5, 6 -> RS 5.5 -> QL2 = 4.5/6 * 100 = 75
    # Items 10,12,18 = 2,3,4 -> RS 3 -> FA = 2/3 * 100 = 66.666...
    answers: dict[int, float | None] = dict.fromkeys(range(1, 31), 1.0)
    answers |= {1: 1, 2: 2, 3: 2, 4: 1, 5: 3, 29: 5, 30: 6, 10: 2, 12: 3, 18: 4}
    scores = score_qlq_c30(to_row(answers))
    assert scores.column("PF2")[0] == pytest.approx(220 / 3)
    assert scores.column("QL2")[0] == pytest.approx(75.0)
    assert scores.column("FA")[0] == pytest.approx(200 / 3)
    # Summary: 5 functional scales 100 except PF2 (220/3); symptoms 0 except FA (200/3)
    expected_summary = (220 / 3 + 4 * 100 + (100 - 200 / 3) + 7 * 100) / 13
    assert scores.column("SUMMARY")[0] == pytest.approx(expected_summary)


ALL_SCALES = {**GLOBAL, **FUNCTIONAL, **SYMPTOM}


@pytest.mark.parametrize("code", list(ALL_SCALES))
def test_half_items_boundary(code):
    items = ALL_SCALES[code]
    n_needed = (len(items) + 1) // 2
    answers: dict[int, float | None] = dict.fromkeys(range(1, 31), 2.0)
    answers[29] = answers[30] = 3.0
    # exactly half (rounded up) answered -> scored from the answered items only
    for i in items[n_needed:]:
        answers[i] = None
    answers[items[0]] = 4.0 if code != "QL2" else 7.0
    expected = reference_scores(answers)
    result = score_qlq_c30(to_row(answers))
    assert not math.isnan(result.column(code)[0])
    assert_scores(result.scores[0], expected)
    # one fewer -> missing, and so is the summary if the scale is in it
    answers[items[n_needed - 1]] = None
    result = score_qlq_c30(to_row(answers))
    assert math.isnan(result.column(code)[0])
    in_summary = code in SUMMARY_FUNCTIONAL or code in SUMMARY_SYMPTOM
    assert math.isnan(result.column("SUMMARY")[0]) == in_summary
    assert_scores(result.scores[0], reference_scores(answers))


def test_random_sets_match_plain_python():
    rng = np.random.default_rng(20240601)
    n = 400
    x = np.empty((n, 30))
    x[:, :28] = rng.integers(1, 5, size=(n, 28))
    x[:, 28:] = rng.integers(1, 8, size=(n, 2))
    x[rng.random((n, 30)) < 0.25] = np.nan
    result = score_qlq_c30(x)
    assert result.valid.all()
    for r in range(n):
        answers = {
            i + 1: (None if math.isnan(x[r, i]) else float(x[r, i])) for i in range(30)
        }
        assert_scores(result.scores[r], reference_scores(answers))


def test_all_empty_set_is_valid_with_all_scores_missing():
    result = score_qlq_c30(np.full((1, 30), np.nan))
    assert result.valid[0]
    assert result.errors == {}
    assert np.isnan(result.scores).all()


@pytest.mark.parametrize(
    ("item", "value", "message"),
    [
        (5, 5, "item q5 value 5 is outside the allowed range 1-4"),
        (1, 0, "item q1 value 0 is outside the allowed range 1-4"),
        (28, -1, "item q28 value -1 is outside the allowed range 1-4"),
        (29, 8, "item q29 value 8 is outside the allowed range 1-7"),
        (30, 0, "item q30 value 0 is outside the allowed range 1-7"),
        (12, 2.5, "item q12 value 2.5 is not an integer"),
        (30, 6.01, "item q30 value 6.01 is not an integer"),
        (7, np.inf, "item q7 value inf is not a finite number"),
    ],
)
def test_invalid_answers_reject_the_whole_set(item, value, message):
    x = np.full((2, 30), 2.0)
    x[1, item - 1] = value
    result = score_qlq_c30(x)
    assert result.valid.tolist() == [True, False]
    assert result.errors == {1: message}
    assert np.isnan(result.scores[1]).all()
    assert not np.isnan(result.scores[0]).any()
    with pytest.raises(ResponseValidationError, match=f"response set 1: {message}"):
        score_qlq_c30(x, strict=True)


def test_seven_is_allowed_only_for_global_items():
    row = np.full(30, 2.0)
    row[28] = row[29] = 7
    assert validate_qlq_c30(row)[0].all()
    row[0] = 7
    assert not validate_qlq_c30(row)[0].any()


def test_wrong_shape_is_rejected():
    with pytest.raises(ResponseValidationError, match="30 columns"):
        score_qlq_c30(np.ones((2, 29)))


def test_shipped_csv_matches_the_scoring_manual():
    """The one definition (the data files) holds the Scoring Manual's structure."""
    text = Path(omop.__file__).parent / "vocab" / "data" / "qlq_c30_scales.csv"
    rows = list(csv.DictReader(text.read_text("utf-8").splitlines()))
    assert [r["scale_code"] for r in rows] == ORDER[:-1]
    for row in rows:
        assert [int(i) for i in row["items"].split(";")] == ALL_SCALES[
            row["scale_code"]
        ]
    assert QLQ_C30 is get_instrument("QLQ-C30").spec
    assert [s.code for s in QLQ_C30.scales] == ORDER[:-1]
    assert {s.code: list(s.items) for s in QLQ_C30.scales} == ALL_SCALES
    assert [(i.number, i.response_min, i.response_max) for i in QLQ_C30.items] == [
        (n, 1, 7 if n in (29, 30) else 4) for n in range(1, 31)
    ]


def test_registry_scores_like_the_constant():
    rng = np.random.default_rng(7)
    x = rng.integers(1, 5, size=(50, 30)).astype(float)
    spec = get_instrument("QLQ-C30").spec
    from instruments.scoring import score_responses

    np.testing.assert_array_equal(
        score_responses(spec, x).scores, score_qlq_c30(x).scores
    )


def test_direction_of_scales():
    assert higher_is_better("PF2")
    assert higher_is_better("QL2")
    assert higher_is_better("SUMMARY")
    assert not higher_is_better("FA")
    assert not higher_is_better("FI")


def test_change_and_deterioration():
    baseline = np.array([[80.0, 80.0, 20.0, 20.0, 50.0, np.nan]])
    follow = np.array([[70.0, 71.0, 30.0, 29.0, 50.0, 10.0]])
    codes = ["PF2", "QL2", "FA", "PA", "SUMMARY", "DY"]
    np.testing.assert_array_equal(
        change_from_baseline(follow, baseline),
        [[-10.0, -9.0, 10.0, 9.0, 0.0, np.nan]],
    )
    flags = deterioration(follow, baseline, codes)
    assert flags.tolist() == [[True, False, True, False, False, False]]
    # improvement is not deterioration
    assert not deterioration([90.0], [70.0], "PF2").any()
    assert not deterioration([0.0], [40.0], "FA").any()
    assert deterioration([60.0], [70.0], "SUMMARY").all()
    assert deterioration([60.0], [65.0], "SUMMARY", threshold_points=5).all()


def test_large_input_across_internal_blocks():
    """Rows on both sides of the 16,384-row processing blocks score like single rows."""
    rng = np.random.default_rng(99)
    n = 40_000
    x = np.empty((n, 30))
    x[:, :28] = rng.integers(1, 5, size=(n, 28))
    x[:, 28:] = rng.integers(1, 8, size=(n, 2))
    x[rng.random((n, 30)) < 0.3] = np.nan
    bad_rows = [0, 16_383, 16_384, 32_768, n - 1]
    x[bad_rows, 29] = 0
    result = score_qlq_c30(x)
    assert sorted(result.errors) == bad_rows
    assert all(
        m == "item q30 value 0 is outside the allowed range 1-7"
        for m in result.errors.values()
    )
    for r in [1, 16_382, 16_385, 32_767, 32_769, n - 2]:
        answers = {
            i + 1: (None if math.isnan(x[r, i]) else float(x[r, i])) for i in range(30)
        }
        assert_scores(result.scores[r], reference_scores(answers))
