"""The PROM form's structure, without Streamlit: steps, item labels, answer labels.

Items are grouped five to a step, a new step starting where the answer scale changes
(QLQ-C30: items 1-28 answered 1-4, items 29-30 answered 1-7), then a review step.
Labels begin with the item number (``"9. ..."``); the text is the site's licensed
wording when a wording file is configured (``RTCOHORT_WORDING_FILE``, language
``RTCOHORT_LANGUAGE``), else the neutral topic label of the shipped item table.

Examples
--------
>>> from instruments.qlq_c30 import QLQ_C30
>>> [(s[0].number, s[-1].number) for s in form_steps(QLQ_C30)]
[(1, 5), (6, 10), (11, 15), (16, 20), (21, 25), (26, 28), (29, 30)]
>>> item_label(QLQ_C30.items[8], Wording.empty())
'9. Item 9 (pain)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dashboards.messages import t
from instruments.scoring import InstrumentSpec, ItemSpec
from instruments.wording import Wording

__all__ = [
    "answer_label",
    "first_open_step",
    "form_steps",
    "item_label",
    "missing_items",
]

PER_STEP = 5
_FOUR = ("answers.not_at_all", "answers.a_little", "answers.quite_a_bit",
         "answers.very_much")  # fmt: skip


def form_steps(
    spec: InstrumentSpec, per_step: int = PER_STEP
) -> list[tuple[ItemSpec, ...]]:
    """Group the items into steps of at most ``per_step`` with one answer scale."""
    steps: list[list[ItemSpec]] = []
    for item in spec.items:
        last = steps[-1] if steps else None
        same_scale = last is not None and (
            (last[0].response_min, last[0].response_max)
            == (item.response_min, item.response_max)
        )
        if last is not None and same_scale and len(last) < per_step:
            last.append(item)
        else:
            steps.append([item])
    return [tuple(s) for s in steps]


def item_label(item: ItemSpec, wording: Wording, language: str | None = None) -> str:
    """Return ``"<number>. <site wording or neutral label>"``."""
    return f"{item.number}. {wording.text(item, language)}"


def answer_label(item: ItemSpec, value: int) -> str:
    """Return the text of answer ``value``: four-point words, or number and anchors.

    >>> from instruments.qlq_c30 import QLQ_C30
    >>> answer_label(QLQ_C30.items[0], 1), answer_label(QLQ_C30.items[29], 7)
    ('1 · Not at all', '7 · Excellent')
    """
    span = item.response_max - item.response_min + 1
    if span == len(_FOUR):
        return f"{value} · {t(_FOUR[value - item.response_min])}"
    if value == item.response_min:
        return f"{value} · {t('answers.very_poor')}"
    if value == item.response_max:
        return f"{value} · {t('answers.excellent')}"
    return str(value)


def missing_items(
    steps: Sequence[Sequence[ItemSpec]], answers: Mapping[int, int]
) -> list[int]:
    """Item numbers not answered yet, in order."""
    return [i.number for s in steps for i in s if i.number not in answers]


def first_open_step(
    steps: Sequence[Sequence[ItemSpec]], answers: Mapping[int, int]
) -> int:
    """Index of the first step with an unanswered item (``len(steps)``: review)."""
    for n, step in enumerate(steps):
        if any(i.number not in answers for i in step):
            return n
    return len(steps)
