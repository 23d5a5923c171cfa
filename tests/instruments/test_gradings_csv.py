"""instruments.gradings_csv: rows become ToxicityGrading; every problem is named."""

from __future__ import annotations

import datetime

import pytest

from instruments.errors import GradingFileError
from instruments.gradings_csv import CSV_COLUMNS, read_gradings_csv

HEADER = ",".join(CSV_COLUMNS)


def test_rows_become_gradings():
    text = (
        f"{HEADER}\nH1,m3,2025-04-01,5.0,Pneumonitis,2,possible\n"
        "H2,,2025-05-02,,Dysphagia,0,\n"
    )
    first, second = read_gradings_csv("in/g.csv", text)
    assert (first.resource_id, first.subject.value, first.timepoint) == (
        "g.csv:2",
        "H1",
        "m3",
    )
    assert first.assessed_on == datetime.date(2025, 4, 1)
    assert (first.term, int(first.grade), first.attribution) == (
        "Pneumonitis",
        2,
        "possible",
    )
    assert (second.version, second.timepoint, second.attribution) == ("5.0", None, None)
    assert not first.subject.is_pseudonym


def test_every_problem_is_reported():
    text = f"{HEADER}\n,m3,2025-04-01,5.0,Pneumonitis,2,\nH1,m3,01/04/2025,5.0,X,2,\n"
    with pytest.raises(GradingFileError) as caught:
        read_gradings_csv("g.csv", text)
    assert caught.value.problems == [
        "g.csv line 2 patient_id: empty",
        "g.csv line 3 assessed_on: '01/04/2025' is not a date (YYYY-MM-DD)",
    ]
    with pytest.raises(GradingFileError, match=r"g\.csv: missing column"):
        read_gradings_csv("g.csv", "patient_id,term\nH1,X\n")
